"""Result tables of a sweep: paper-style score table, all trials as Parquet, a two-parameter heatmap.

Everything here works on plain rows (``list[dict]``: one per trial, flat keys such as
``config/theta_a``, ``test/seg_V``) so it can be tested without Ray or MLflow.
"""

from __future__ import annotations

import html
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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


def _fmt_pm(mean: float, std: float, n: int, sep: str = " ± ") -> str:
    """``61.2`` for one run, ``61.2 ± 0.4`` (sample std) for several (``sep="±"``: compact, for
    console tables)."""
    if not math.isfinite(mean):
        return "-"
    return f"{mean:.1f}" if n <= 1 or not math.isfinite(std) else f"{mean:.1f}{sep}{std:.1f}"


def _short_ref(label: str) -> str:
    """A published row's label without its bracketed note, marked ``*`` (console tables)."""
    import re

    short = re.sub(r"\s*\[[^\]]*\]\s*$", "", label)
    return short + " *" if short != label else label


def _entries(best: Any, label: str, task: TaskSpec) -> list[tuple[str, list[str]]]:
    """``best`` as labelled formatted rows: a trial row (dict), a :class:`Group` (mean ± std over
    its seeds), or a list of ``(label, Group)`` (one row each, e.g. the methods of a comparison)."""
    if best is None:
        return []
    if isinstance(best, Group):
        best = [(label, best)]
    if isinstance(best, list):
        out = []
        for lab, g in best:
            m, sd = g.scores(task, "test/")
            out.append((lab, [_fmt_pm(m[k], sd[k], g.n_finished) for k in task.score_keys]))
        return out
    s = scores_of(best, task)
    return [(label, [_fmt(s[k]) for k in task.score_keys])]


def paper_table_rows(best: Any, label: str, task: TaskSpec,
                     methods: Sequence[str] = ()) -> list[tuple[str, list[str]]]:
    """Table rows (label, formatted scores): the run's rows first (a trial row, a group of seeds
    as mean ± std, or several labelled groups), then the published rows of ``methods`` (the task's
    reference rows for the methods being compared)."""
    rows = _entries(best, label, task)
    for name, vals in task.references_for(methods):
        rows.append((name, [_fmt(v) for v in vals]))
    return rows


def _note(task: TaskSpec, data_note: str, methods: Sequence[str], seeds: int = 1) -> str:
    refs = " " + task.reference_note if task.references_for(methods) else ""
    over = f" Mean ± standard deviation over {seeds} seeds." if seeds > 1 else ""
    return f"This run's rows: test split of {data_note}, at the epoch selected on validation.{over}{refs}"


def _n_of(best: Any) -> int:
    if isinstance(best, Group):
        return best.n_finished
    if isinstance(best, list):
        return max((g.n_finished for _, g in best), default=1)
    return 1


def paper_table_markdown(best: Any, label: str, data_note: str, task: TaskSpec,
                         methods: Sequence[str] = ()) -> str:
    """Markdown table of the run's test scores next to the published rows of ``methods``."""
    header = ["Method", *task.score_labels]
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join(["---"] + ["---:"] * len(task.score_keys)) + "|",
    ]
    for name, vals in paper_table_rows(best, label, task, methods):
        lines.append("| " + " | ".join([name, *vals]) + " |")
    return "\n".join(lines) + "\n\n" + _note(task, data_note, methods, _n_of(best)) + "\n"


def paper_table_html(best: Any, label: str, data_note: str, task: TaskSpec,
                     methods: Sequence[str] = ()) -> str:
    """The same table as a small standalone HTML page."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in ["Method", *task.score_labels])
    body = []
    own = len(_entries(best, label, task))
    for i, (name, vals) in enumerate(paper_table_rows(best, label, task, methods)):
        style = ' style="font-weight:bold"' if i < own else ""
        cells = "".join(f"<td>{html.escape(v)}</td>" for v in vals)
        body.append(f"<tr{style}><td>{html.escape(name)}</td>{cells}</tr>")
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>avtune</title>"
        "<style>table{border-collapse:collapse}td,th{border:1px solid #999;padding:3px 8px;"
        "text-align:right}td:first-child{text-align:left}</style></head><body>"
        f"<table><tr>{head}</tr>{''.join(body)}</table>"
        f"<p>{html.escape(_note(task, data_note, methods, _n_of(best)))}</p>"
        "</body></html>\n"
    )


# ----------------------------------------------------------------------------- seeds and ranking

# The config key a repeated configuration's seed index travels under (Ray Tune's Repeater's).
SEED_INDEX = "__trial_index__"
FINISHED = "TERMINATED"


@dataclass
class Group:
    """The trials of one configuration (one per seed; a single trial without ``--seeds``).

    Attributes:
        config: The configuration's tuned values (``{"theta_a": 0.6, ...}``), seed index excluded.
        rows: Its trial rows, in seed order.
    """

    config: dict[str, Any]
    rows: list[Mapping[str, Any]] = field(default_factory=list)

    @property
    def finished(self) -> list[Mapping[str, Any]]:
        return [r for r in self.rows if r.get("status", FINISHED) == FINISHED]

    @property
    def n_finished(self) -> int:
        return len(self.finished)

    def stat(self, key: str) -> tuple[float, float]:
        """Mean and sample standard deviation of ``key`` over the finished seeds (NaN if none;
        std NaN for one seed)."""
        vals = [float(r[key]) for r in self.finished if _finite(r.get(key))]
        if not vals:
            return math.nan, math.nan
        mean = sum(vals) / len(vals)
        if len(vals) < 2:
            return mean, math.nan
        return mean, math.sqrt(sum((v - mean) ** 2 for v in vals) / (len(vals) - 1))

    def scores(self, task: TaskSpec, prefix: str = "test/") -> tuple[dict[str, float], dict[str, float]]:
        """``(means, stds)`` of the task's scores under ``prefix``."""
        pairs = {k: self.stat(prefix + k) for k in task.score_keys}
        return {k: v[0] for k, v in pairs.items()}, {k: v[1] for k, v in pairs.items()}

    def label(self) -> str:
        return settings_label(self.config)

    def summary_row(self, task: TaskSpec, metric: str) -> dict[str, Any]:
        """One flat row of the group's means (``metric``, ``test/...``) and the first seed's ids."""
        first = self.rows[0] if self.rows else {}
        out: dict[str, Any] = {k: v for k, v in first.items() if k in ("trial_id", "trial_name")}
        out.update({f"config/{k}": v for k, v in self.config.items()})
        out[metric] = self.stat(metric)[0]
        for k, v in self.scores(task, "test/")[0].items():
            out[f"test/{k}"] = v
        return out


def _value_text(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def settings_label(config: Mapping[str, Any]) -> str:
    """``theta_a=0.6 theta_v=1.8``: a configuration's tuned values, as runs and tables name it."""
    return " ".join(f"{k}={_value_text(v)}" for k, v in sorted(config.items())) or "(defaults)"


def config_of(row: Mapping[str, Any], keys: Sequence[str] | None = None) -> dict[str, Any]:
    """The tuned values of a trial row (``config/<k>``), without the seed index."""
    cfg = {k.removeprefix("config/"): v for k, v in row.items() if k.startswith("config/")}
    cfg.pop(SEED_INDEX, None)
    if keys is not None:
        cfg = {k: cfg[k] for k in keys if k in cfg}
    return cfg


def group_rows(rows: Sequence[Mapping[str, Any]], keys: Sequence[str] | None = None) -> list[Group]:
    """Trial rows grouped by configuration (``keys`` of their config; all but the seed index by
    default), in first-seen order; within a group, rows are in seed order."""
    groups: dict[str, Group] = {}
    for r in rows:
        cfg = config_of(r, keys)
        key = repr(sorted((k, repr(v)) for k, v in cfg.items()))
        groups.setdefault(key, Group(cfg)).rows.append(r)
    for g in groups.values():
        g.rows.sort(key=lambda r: (r.get("seed") is None, r.get("seed") or 0))
    return list(groups.values())


def rank_groups(groups: Sequence[Group], metric: str, mode: str) -> list[Group]:
    """Configurations best first by the mean of ``metric`` over finished seeds; configurations
    without a finished seed last."""
    def key(g: Group):
        m = g.stat(metric)[0]
        if not math.isfinite(m):
            return (1, 0.0)
        return (0, -m if mode == "max" else m)
    return sorted(groups, key=key)


def best_group(rows: Sequence[Mapping[str, Any]], metric: str, mode: str,
               keys: Sequence[str] | None = None) -> Group | None:
    """The configuration with the best mean ``metric`` over its finished seeds, or None."""
    ranked = rank_groups(group_rows(rows, keys), metric, mode)
    return ranked[0] if ranked and math.isfinite(ranked[0].stat(metric)[0]) else None


def _header_rows(labels: Sequence[str]) -> tuple[list[str], list[str]]:
    """Labels split at their first space into a group row ("Seg", "Event") and a name row."""
    top, bottom, prev = [], [], None
    for lab in labels:
        head, _, rest = lab.partition(" ")
        if not rest:
            head, rest = "", lab
        top.append(head if head != prev else "")
        bottom.append(rest)
        prev = head
    return top, bottom


def ranked_table(rows: Sequence[Mapping[str, Any]], *, task: TaskSpec, metric: str, mode: str,
                 keys: Sequence[str] | None = None, limit: int | None = None) -> str:
    """Every configuration ranked by its selected validation ``metric`` (mean ± std over seeds),
    with the settings, the selected epoch (from 1; mean over seeds) and the test scores (means
    over seeds), as a plain-text table; unfinished trials are listed below it with their status."""
    groups = rank_groups(group_rows(rows, keys), metric, mode)
    seeds = max((len(g.rows) for g in groups), default=1)
    cols = ["#", "settings"] + (["seeds"] if seeds > 1 else []) + [f"{metric} ({mode})", "epoch"]
    labels = list(task.score_labels)
    top, bottom = _header_rows([f"test {lab}" if " " not in lab else lab for lab in labels])
    body = []
    shown = [g for g in groups if g.n_finished][:limit]
    for i, g in enumerate(shown, 1):
        m, sd = g.stat(metric)
        ep = g.stat("best_epoch")[0] + 1  # the selected epoch, counted from 1
        line = [str(i), g.label()] + ([f"{g.n_finished}/{len(g.rows)}"] if seeds > 1 else [])
        line += [_fmt_pm2(m, sd, g.n_finished).replace(" ± ", "±"),
                 "-" if not math.isfinite(ep) else f"{ep:.0f}" if g.n_finished == 1 else f"{ep:.1f}"]
        means, stds = g.scores(task, "test/")
        # Test scores as means (their std is in the paper table): the console table stays narrow.
        line += [_fmt(means[k]) for k in task.score_keys]
        body.append(line)
    head1 = [""] * len(cols) + top
    head2 = cols + bottom
    widths = [max(len(x) for x in col) for col in zip(head1, head2, *body)] if body else [len(h) for h in head2]
    left = {1}

    def fmt(cells):
        return "  ".join(c.ljust(w) if j in left else c.rjust(w) for j, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = []
    if any(head1):
        out.append(fmt(head1))
    out += [fmt(head2), "  ".join("-" * w for w in widths)] + [fmt(b) for b in body]
    if not body:
        out.append("(no finished trial)")
    others = [(g, r) for g in groups for r in g.rows if r.get("status", FINISHED) != FINISHED]
    for g, r in others:
        seed = f" seed={r['seed']}" if r.get("seed") is not None and seeds > 1 else ""
        out.append(f"   {r.get('status', '?').lower():>11}: {g.label()}{seed}"
                   + (f" ({r['trial_id']})" if r.get("trial_id") else ""))
    if limit is not None and len([g for g in groups if g.n_finished]) > limit:
        out.append(f"   ... {len([g for g in groups if g.n_finished]) - limit} more")
    return "\n".join(out)


def _fmt_pm2(mean: float, std: float, n: int) -> str:
    """Like :func:`_fmt_pm` with two decimals (the metric a search ranks by)."""
    if not math.isfinite(mean):
        return "-"
    return f"{mean:.2f}" if n <= 1 or not math.isfinite(std) else f"{mean:.2f} ± {std:.2f}"


def ranked_markdown(rows: Sequence[Mapping[str, Any]], *, task: TaskSpec, metric: str, mode: str,
                    keys: Sequence[str] | None = None, limit: int = 10) -> str:
    """The ranked configurations as a Markdown table (the parent run's description)."""
    groups = [g for g in rank_groups(group_rows(rows, keys), metric, mode) if g.n_finished][:limit]
    seeds = max((len(g.rows) for g in groups), default=1)
    head = ["#", "settings"] + (["seeds"] if seeds > 1 else []) + [metric] + list(task.score_labels)
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---:", "---"] + ["---:"] * (len(head) - 2)) + "|"]
    for i, g in enumerate(groups, 1):
        m, sd = g.stat(metric)
        means, stds = g.scores(task, "test/")
        cells = [str(i), g.label()] + ([str(g.n_finished)] if seeds > 1 else []) + [_fmt_pm2(m, sd, g.n_finished)]
        cells += [_fmt_pm(means[k], stds[k], g.n_finished) for k in task.score_keys]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


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


def write_sweep_tables(rows: Sequence[Mapping[str, Any]], out_dir: str | os.PathLike, *, metric: str,
                       mode: str, tuned: Sequence[str], label: str, data_note: str, task: TaskSpec,
                       methods: Sequence[str] = ()) -> list[Path]:
    """Writes every table of a sweep into ``out_dir``; returns the written paths.

    Files: ``paper_table.md``, ``paper_table.html`` (the best configuration's test scores, mean ±
    std over its seeds), ``trials.parquet`` (one row per trial) and, when exactly two numeric
    parameters were tuned, ``heatmap.png`` (cells average over trials and seeds).
    """
    out = Path(out_dir)
    best = best_group([r for r in rows if r.get("status", FINISHED) == FINISHED], metric, mode)
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


# ----------------------------------------------------------------------------- comparisons

# Per-class scores a task may report for the test split: ``test/class_<modality>/<class>``.
CLASS_PREFIX = "test/class_"


def _text_table(header: Sequence[str], body: Sequence[Sequence[str]], left: Sequence[int] = (0,)) -> list[str]:
    """Aligned plain-text table; labels with a space get a two-row header (see _header_rows)."""
    top, bottom = _header_rows(list(header[len(left):]))
    head1 = [""] * len(left) + top
    head2 = list(header[:len(left)]) + bottom
    widths = [max(len(x) for x in col) for col in zip(head1, head2, *body)]

    def fmt(cells):
        return "  ".join(c.ljust(w) if j in left else c.rjust(w)
                         for j, (c, w) in enumerate(zip(cells, widths))).rstrip()

    out = [fmt(head1)] if any(head1) else []
    return out + [fmt(head2), "  ".join("-" * w for w in widths)] + [fmt(b) for b in body]
