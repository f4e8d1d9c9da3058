"""Result tables of a sweep: paper-style score table, all trials as Parquet, a two-parameter heatmap.

Everything here works on plain rows (``list[dict]``: one per trial, flat keys such as
``config/theta_a``, ``test/seg_V``) so it can be tested without Ray or MLflow.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from trainables.core.method import TaskSpec
from trainables.data.format import atomic_path, atomic_write_bytes

def best_row(rows: Sequence[Mapping[str, Any]], metric: str, mode: str) -> Mapping[str, Any] | None:
    """The row with the best finite ``metric`` (``mode`` ``max`` or ``min``), or None."""
    scored = [r for r in rows if _finite(r.get(metric))]
    if not scored:
        return None
    pick = max if mode == "max" else min
    return pick(scored, key=lambda r: float(r[metric]))


def scores_of(row: Mapping[str, Any], task: TaskSpec, prefix: str = "test/") -> dict[str, float]:
    """The task's scores of a trial row under ``prefix`` (missing ones are NaN)."""
    return {k: float(row[prefix + k]) if _finite(row.get(prefix + k)) else math.nan
            for k in task.score_keys}


def _finite(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _fmt(v: float) -> str:
    return "-" if not math.isfinite(v) else f"{v:.1f}"


def paper_table_rows(best: Mapping[str, Any] | None, label: str, task: TaskSpec,
                     methods: Sequence[str] = ()) -> list[tuple[str, list[str]]]:
    """Table rows (label, formatted scores): the best trial first, then the published rows of
    ``methods`` (the task's reference rows for the methods being compared)."""
    rows: list[tuple[str, list[str]]] = []
    if best is not None:
        s = scores_of(best, task)
        rows.append((label, [_fmt(s[k]) for k in task.score_keys]))
    for name, vals in task.references_for(methods):
        rows.append((name, [_fmt(v) for v in vals]))
    return rows


def _note(task: TaskSpec, data_note: str, methods: Sequence[str]) -> str:
    refs = " " + task.reference_note if task.references_for(methods) else ""
    return f"This sweep's row: test split of {data_note}.{refs}"


def paper_table_markdown(best: Mapping[str, Any] | None, label: str, data_note: str, task: TaskSpec,
                         methods: Sequence[str] = ()) -> str:
    """Markdown table of the best trial's test scores next to the published rows of ``methods``."""
    header = ["Method", *task.score_labels]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * len(task.score_keys)) + "|",
    ]
    for name, vals in paper_table_rows(best, label, task, methods):
        lines.append("| " + " | ".join([name, *vals]) + " |")
    return "\n".join(lines) + "\n\n" + _note(task, data_note, methods) + "\n"


def paper_table_html(best: Mapping[str, Any] | None, label: str, data_note: str, task: TaskSpec,
                     methods: Sequence[str] = ()) -> str:
    """The same table as a small standalone HTML page."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in ["Method", *task.score_labels])
    body = []
    for i, (name, vals) in enumerate(paper_table_rows(best, label, task, methods)):
        style = ' style="font-weight:bold"' if (best is not None and i == 0) else ""
        cells = "".join(f"<td>{html.escape(v)}</td>" for v in vals)
        body.append(f"<tr{style}><td>{html.escape(name)}</td>{cells}</tr>")
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>avtune sweep</title>"
        "<style>table{border-collapse:collapse}td,th{border:1px solid #999;padding:3px 8px;"
        "text-align:right}td:first-child{text-align:left}</style></head><body>"
        f"<table><tr>{head}</tr>{''.join(body)}</table>"
        f"<p>{html.escape(_note(task, data_note, methods))}</p>"
        "</body></html>\n"
    )


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
        if present and all(_finite(v) or (isinstance(v, float) and math.isnan(v)) for v in present):
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
           if _finite(r.get(px)) and _finite(r.get(py)) and _finite(r.get(metric))]
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
    fig.tight_layout()
    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=110)
    finally:
        plt.close(fig)
    return Path(path)


def write_sweep_tables(rows: Sequence[Mapping[str, Any]], out_dir: str | os.PathLike, *, metric: str,
                       mode: str, tuned: Sequence[str], label: str, data_note: str, task: TaskSpec,
                       methods: Sequence[str] = ()) -> list[Path]:
    """Writes every table of a sweep into ``out_dir``; returns the written paths.

    Files: ``paper_table.md``, ``paper_table.html``, ``trials.parquet`` and, when exactly two
    numeric parameters were tuned, ``heatmap.png``.
    """
    out = Path(out_dir)
    best = best_row(rows, metric, mode)
    paths = []
    md = out / "paper_table.md"
    atomic_write_bytes(md, paper_table_markdown(best, label, data_note, task, methods).encode())
    paths.append(md)
    ht = out / "paper_table.html"
    atomic_write_bytes(ht, paper_table_html(best, label, data_note, task, methods).encode())
    paths.append(ht)
    paths.append(write_trials_parquet(rows, out / "trials.parquet"))
    numeric = [p for p in tuned if any(_finite(r.get(f"config/{p}")) for r in rows)]
    if len(tuned) == 2 and len(numeric) == 2:
        try:
            paths.append(write_heatmap(rows, f"config/{numeric[0]}", f"config/{numeric[1]}", metric,
                                       out / "heatmap.png"))
        except ValueError:
            pass  # no finished trial carries the metric: nothing to draw
    return paths
