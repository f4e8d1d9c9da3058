"""Tables of a method comparison (``python -m orchestrator.compare``): per-method mean ± std over
seeds beside the published rows, per-class F panels and bars, and the files written for them."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from trainables.core.method import TaskSpec
from trainables.data.format import atomic_write_bytes

from orchestrator.tables import (CLASS_PREFIX, FINISHED, Group, _fmt, _fmt_pm, _fmt_pm2, _short_ref, _text_table, group_rows, paper_table_html, paper_table_markdown, save_figure, write_trials_parquet)


def method_groups(rows: Sequence[Mapping[str, Any]], methods: Sequence[str]) -> list[tuple[str, Group]]:
    """A comparison's rows as ``(method, Group of its seeds)``, in ``methods`` order."""
    by = {str(g.config.get("method")): g for g in group_rows(rows, ["method"])}
    return [(m, by[m]) for m in methods if m in by]


def class_panels(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """The per-class score names of finished rows, by modality (``{"A": [...], "V": [...]}``),
    in first-seen order."""
    out: dict[str, list[str]] = {}
    for r in rows:
        if r.get("status", FINISHED) != FINISHED:
            continue
        for k in r:
            if k.startswith(CLASS_PREFIX):
                mod, _, name = k[len(CLASS_PREFIX):].partition("/")
                names = out.setdefault(mod, [])
                if name not in names:
                    names.append(name)
    return out


_MODALITY = {"A": "audio", "V": "visual"}


def compare_text(rows: Sequence[Mapping[str, Any]], *, task: TaskSpec, methods: Sequence[str],
                 metric: str, data_note: str) -> str:
    """A comparison as plain text: the paper-style table (mean ± std over seeds per method,
    beside the published rows), the selected validation metric, and the per-class F table."""
    entries = method_groups(rows, methods)
    body = []
    for m, g in entries:
        means, stds = g.scores(task, "test/")
        vm, vs = g.stat(metric)
        body.append([m, f"{g.n_finished}/{len(g.rows)}", _fmt_pm2(vm, vs, g.n_finished).replace(" ± ", "±")]
                    + [_fmt_pm(means[k], stds[k], g.n_finished, "±") for k in task.score_keys])
    refs = task.references_for(methods)
    for name, vals in refs:
        body.append([_short_ref(name), "", ""] + [_fmt(v) for v in vals])
    seeds = max((len(g.rows) for _, g in entries), default=1)
    lines = [f"test scores on {data_note} at the epoch selected by {metric}"
             + ("; mean±std over the finished seeds" if seeds > 1 else "") + ":"]
    lines += ["  " + ln for ln in _text_table(["method", "seeds", metric, *task.score_labels], body,
                                              left=(0,))]
    if refs:
        lines.append("  * " + task.reference_note)
    panels = class_panels(rows)
    if panels:
        lines.append("per-class segment F (test, mean over seeds):")
        lines += ["  " + ln for ln in class_table_text(entries, panels)]
    return "\n".join(lines)


def _class_mean(g: Group, mod: str, name: str) -> tuple[float, float]:
    return g.stat(f"{CLASS_PREFIX}{mod}/{name}")


def class_table_text(entries: Sequence[tuple[str, Group]], panels: Mapping[str, Sequence[str]]) -> list[str]:
    """One line per class: each method's audio F, then each method's visual F (means over seeds)."""
    mods = list(panels)
    names = [n for n in dict.fromkeys(n for m in mods for n in panels[m])]
    header = ["class"] + [f"{_MODALITY.get(m, m)} {meth}" for m in mods for meth, _ in entries]
    body = []
    for n in names:
        cells = [n]
        for m in mods:
            for _, g in entries:
                v = _class_mean(g, m, n)[0]
                cells.append("-" if not math.isfinite(v) else f"{v:.1f}")
        body.append(cells)
    return _text_table(header, body)


def class_table_markdown(entries: Sequence[tuple[str, Group]], panels: Mapping[str, Sequence[str]]) -> str:
    mods = list(panels)
    names = [n for n in dict.fromkeys(n for m in mods for n in panels[m])]
    header = ["class"] + [f"{_MODALITY.get(m, m)} F, {meth}" for m in mods for meth, _ in entries]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for n in names:
        cells = [n]
        for m in mods:
            for _, g in entries:
                v, sd = _class_mean(g, m, n)
                cells.append(_fmt_pm(v, sd, g.n_finished))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


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
            stats = [_class_mean(g, m, n) for n in names]
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


def write_compare_tables(rows: Sequence[Mapping[str, Any]], out_dir: str | os.PathLike, *, metric: str,
                         mode: str, task: TaskSpec, methods: Sequence[str], data_note: str) -> list[Path]:
    """A comparison's files in ``out_dir``: ``paper_table.md``/``.html`` (one row per method,
    mean ± std over seeds, beside the published rows), ``compare.txt`` (what the console shows),
    ``trials.parquet`` and, where the methods report per-class scores, ``class_f.md`` and
    ``class_f.png`` (per-class F bars per modality)."""
    del mode  # methods are listed in the order given, not ranked
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    entries = method_groups([r for r in rows if r.get("status", FINISHED) == FINISHED], methods)
    paths = []
    md = out / "paper_table.md"
    atomic_write_bytes(md, paper_table_markdown(entries or None, "", data_note, task, methods).encode())
    ht = out / "paper_table.html"
    atomic_write_bytes(ht, paper_table_html(entries or None, "", data_note, task, methods).encode())
    txt = out / "compare.txt"
    atomic_write_bytes(txt, (compare_text(rows, task=task, methods=methods, metric=metric,
                                          data_note=data_note) + "\n").encode())
    paths += [md, ht, txt, write_trials_parquet(rows, out / "trials.parquet")]
    panels = class_panels(rows)
    if panels and entries:
        cm = out / "class_f.md"
        atomic_write_bytes(cm, class_table_markdown(entries, panels).encode())
        paths += [cm, write_class_bars(entries, panels, out / "class_f.png")]
    return paths
