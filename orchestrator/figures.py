"""The files a run writes beside its tables: all trials as Parquet, a heatmap of a two-setting
sweep, per-class F bars of a comparison. Plain rows in (:mod:`orchestrator.rows`), files out,
each written atomically."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from orchestrator.rows import Group, finite
from orchestrator.tables import _MODALITY, class_stat
from trainables.data.format import atomic_path


def write_trials_parquet(rows: Sequence[Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """All trials as one Parquet table (one row per trial; columns are the union of row keys)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    keys: list[str] = []
    for r in rows:
        keys.extend(k for k in r if k not in keys)
    cols = {}
    for k in keys:
        vals = [r.get(k) for r in rows]
        present = [v for v in vals if v is not None]
        if present and all(finite(v) or (isinstance(v, float) and math.isnan(v)) for v in present):
            cols[k] = pa.array([float(v) if v is not None else None for v in vals], pa.float64())
        else:
            cols[k] = pa.array([None if v is None else str(v) for v in vals], pa.string())
    with atomic_path(path, suffix=".parquet") as tmp:
        pq.write_table(pa.table(cols) if cols else pa.table({"trial_id": pa.array([], pa.string())}), tmp)
    return Path(path)


def heatmap_grid(rows: Sequence[Mapping[str, Any]], px: str, py: str, metric: str, max_levels: int = 12):
    """Mean ``metric`` per (px, py) cell.

    An axis whose values repeat (a grid sweep) gets one cell per value when it has at most
    ``max_levels`` of them; otherwise (a sampled sweep) it is cut into 6 equal bins.

    Returns:
        ``(x_labels, y_labels, matrix)`` with matrix[i][j] the mean over rows in y-cell i, x-cell j
        (NaN where no trial fell).
    """
    pts = [(float(r[px]), float(r[py]), float(r[metric])) for r in rows
           if finite(r.get(px)) and finite(r.get(py)) and finite(r.get(metric))]
    if not pts:
        raise ValueError(f"no trial has finite {px!r}, {py!r} and {metric!r}")

    def axis(vals: list[float]):
        uniq = sorted(set(vals))
        # Repeated values mean a grid: one cell per value. Sampled values are all distinct.
        if len(uniq) <= max_levels and (len(uniq) < len(vals) or len(uniq) <= 2):
            return [f"{u:.4g}" for u in uniq], (lambda v: uniq.index(v))
        lo, hi, nb = min(vals), max(vals), 6
        width = (hi - lo) / nb
        labels = [f"{lo + i * width:.3g}-{lo + (i + 1) * width:.3g}" for i in range(nb)]
        return labels, (lambda v: min(int((v - lo) / width), nb - 1))

    xl, xi = axis([p[0] for p in pts])
    yl, yi = axis([p[1] for p in pts])
    sums = [[0.0] * len(xl) for _ in yl]
    counts = [[0] * len(xl) for _ in yl]
    for x, y, m in pts:
        sums[yi(y)][xi(x)] += m
        counts[yi(y)][xi(x)] += 1
    mat = [[sums[i][j] / counts[i][j] if counts[i][j] else math.nan for j in range(len(xl))]
           for i in range(len(yl))]
    return xl, yl, mat


def write_heatmap(rows: Sequence[Mapping[str, Any]], px: str, py: str, metric: str,
                  path: str | os.PathLike, title: str = "") -> Path:
    """A PNG heatmap of ``metric`` over two tuned parameters (cells annotated with values)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    xl, yl, mat = heatmap_grid(rows, px, py, metric)
    arr = np.array(mat, dtype=float)
    fig, ax = plt.subplots(figsize=(1.0 + 0.9 * len(xl), 1.0 + 0.6 * len(yl)))
    im = ax.imshow(np.ma.masked_invalid(arr), cmap="viridis", aspect="auto", origin="lower")
    ax.set_xticks(range(len(xl)), xl, rotation=30 if max(map(len, xl)) > 5 else 0)
    ax.set_yticks(range(len(yl)), yl)
    ax.set_xlabel(px.removeprefix("config/"))
    ax.set_ylabel(py.removeprefix("config/"))
    for i in range(arr.shape[0]):
        for j in range(arr.shape[1]):
            if math.isfinite(arr[i, j]):
                ax.text(j, i, f"{arr[i, j]:.1f}", ha="center", va="center", color="w", fontsize=8)
    fig.colorbar(im, ax=ax, label=metric)
    ax.set_title(title or f"{metric} over {px.removeprefix('config/')} x {py.removeprefix('config/')}")
    return save_figure(fig, path)


def save_figure(fig: Any, path: str | os.PathLike) -> Path:
    """Lays out ``fig``, writes it as a PNG atomically and closes it (also on error)."""
    import matplotlib.pyplot as plt

    try:
        fig.tight_layout()
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=110)
    finally:
        plt.close(fig)
    return Path(path)


def write_class_bars(entries: Sequence[tuple[str, Group]], panels: Mapping[str, Sequence[str]],
                     path: str | os.PathLike, title: str = "") -> Path:
    """Per-class F bars: one panel per modality, one bar per method and class (mean over seeds,
    error bar one std)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    mods = list(panels)
    names = [n for n in dict.fromkeys(n for m in mods for n in panels[m])]
    fig, axes = plt.subplots(len(mods), 1, figsize=(max(8.0, 0.45 * len(names) * max(1, len(entries)) ** 0.5 + 3),
                                                    3.2 * len(mods)), squeeze=False)
    width = 0.8 / max(1, len(entries))
    x = np.arange(len(names))
    for ax, m in zip(axes[:, 0], mods):
        for j, (meth, g) in enumerate(entries):
            stats = [class_stat(g, m, n) for n in names]
            vals = [v if math.isfinite(v) else 0.0 for v, _ in stats]
            errs = [sd if math.isfinite(sd) else 0.0 for _, sd in stats]
            ax.bar(x + (j - (len(entries) - 1) / 2) * width, vals, width, yerr=errs, label=meth, capsize=1.5)
        ax.set_ylabel(f"{_MODALITY.get(m, m)} F (test)")
        ax.set_xticks(x, names, rotation=60, ha="right", fontsize=7)
        ax.set_ylim(0, 100)
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].legend(fontsize=8, ncols=min(4, len(entries)))
    axes[0, 0].set_title(title or "per-class segment F on the test split (mean over seeds)")
    return save_figure(fig, path)
