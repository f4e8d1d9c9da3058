"""What a finished run reports, from its rows and :class:`~orchestrator.rows.RunInfo` alone: the
console's closing lines, the MLflow parent's description and scores, and the table files.

A sweep and a comparison report the same way: a paper-style table of the run's entries (a sweep's
best configuration, a comparison's arms) beside the published rows, the configurations ranked by
the selection metric, per-class F where the methods report it, and a heatmap of a two-setting
sweep. :mod:`orchestrator.tracking` writes these to MLflow, :mod:`orchestrator.results` rebuilds
them from MLflow, and :mod:`orchestrator.progress` prints them; nothing here talks to either.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from orchestrator import figures, tables
from orchestrator.rows import FAILED, OBJECTIVE, RunInfo, finished_rows
from trainables.core.method import TaskSpec, task_spec
from trainables.data.format import atomic_write_bytes


def _task(info: RunInfo) -> TaskSpec:
    return task_spec(info.task)


def task_scores(info: RunInfo) -> list[str]:
    """The task's score keys (the columns every table and the MLflow view show)."""
    return list(_task(info).score_keys)


def best_configuration(info: RunInfo, rows: Sequence[Mapping[str, Any]]
                       ) -> tuple[dict[str, Any], list[int], Any] | None:
    """A sweep's best configuration: its settings, the seeds it finished under and its first
    trial's id; None for a comparison (its arms are the result) or when nothing finished."""
    entries = info.entries(rows) if info.kind == "sweep" else []
    if not entries:
        return None
    g = entries[0][1]
    seeds = sorted({int(r["seed"]) for r in g.finished if r.get("seed") is not None})
    return dict(g.config), seeds, g.rows[0].get("trial_id")


def _key_label(task: TaskSpec, metric: str) -> tuple[str, str] | None:
    """``(score key, label)`` of the task score that ``metric`` selects on (``val/seg_Type`` ->
    ``seg_Type``, ``Seg Type@AV``), or None for a metric that is no task score."""
    return next(((k, lab) for k, lab in zip(task.score_keys, task.score_labels) if f"val/{k}" == metric), None)


def _paper(info: RunInfo, rows: Sequence[Mapping[str, Any]], task: TaskSpec, compact: bool = False):
    # The console's comparison table also shows each arm's seeds and selection metric.
    return tables.paper_table(info.entries(rows), task, methods=info.methods, data_note=info.data_note,
                              marks=info.marks, mark_notes=info.mark_notes, compact=compact,
                              metric=info.metric if compact else None)


def _references(info: RunInfo) -> dict[str, str]:
    return {a: r for a, r in info.references.items() if a in info.arms}


def closing_lines(info: RunInfo, rows: Sequence[Mapping[str, Any]], planned: int = 0) -> list[str]:
    """The console's text at the end of a run (and of ``--show``)."""
    task = _task(info)
    done = finished_rows(rows)
    what = "trials" if info.kind == "sweep" else "runs"
    lines = [f"[avtune] {len(done)}/{planned or len(rows)} {what} finished"]
    entries = info.entries(rows)
    if info.kind == "sweep":
        if rows:
            lines.append(f"[avtune] {what} ranked by {info.metric} at the selected epoch (test scores of that epoch):")
            lines += tables.ranked_table(rows, task=task, metric=info.metric, mode=info.mode,
                                         keys=info.axis).text("  ").splitlines()
        if not entries:
            return lines + [f"[avtune] no trial reported {info.metric}"]
        best = entries[0][1]
        m, sd = best.stat(info.metric)
        pm = f" ± {sd:.2f} (mean of {best.n_finished} seeds)" if best.n_finished > 1 else ""
        cfg = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(best.config.items()))
        lines.append(f"[avtune] best trial {best.rows[0].get('trial_id')}: {cfg}  {info.metric}={m:.2f}{pm}")
        means, _ = best.scores(task.score_keys)
        if any(math.isfinite(v) for v in means.values()):
            lines.append("[avtune] test  " + "  ".join(f"{lab} {means[k]:.1f}" for k, lab in
                                                       zip(task.score_keys, task.score_labels)))
        return lines
    lines.append(f"[avtune] test scores on {info.data_note} at the epoch selected by {info.metric}"
                 + ("; mean±std over the finished seeds" if info.seeds > 1 else "") + ":")
    lines += _paper(info, rows, task, compact=True).text("  ").splitlines()
    if info.columns and entries:
        lines.append("[avtune] further figures at the selected epoch (mean±std over seeds):")
        lines += tables.figures_table(entries, info.columns).text("  ").splitlines()
    if info.paired and len(entries) > 1:
        lines.append("[avtune] paired per-seed differences of consecutive entries, mean ± sd (wins/seeds):")
        lines += tables.paired_table(entries, [info.metric, *info.columns]).text("  ").splitlines()
    if _references(info):
        lines.append("[avtune] read against the papers:")
        lines += tables.prediction_table(entries, task, _references(info)).text("  ").splitlines()
    panels = tables.class_panels(rows)
    if panels and entries:
        lines.append("[avtune] per-class segment F (test, mean over seeds):")
        lines += tables.class_table(entries, panels, compact=True).text("  ").splitlines()
    return lines


def headline(info: RunInfo, rows: Sequence[Mapping[str, Any]]) -> str:
    """One line of result: a sweep's best configuration, or each arm's test score."""
    task = _task(info)
    entries = info.entries(rows)
    key = _key_label(task, info.metric) or (task.score_keys[0], task.score_labels[0])
    if not entries:
        return f"**{info.ref}** `{info.name}`: no trial finished."
    if info.kind != "sweep":
        summary = ", ".join(f"{a} {g.stat('test/' + key[0])[0]:.1f}" for a, g in entries)
        return (f"**{' vs '.join(info.arms)}**, {info.seeds} seed(s) each on {info.data_note}: "
                f"test {key[1]} {summary}.")
    best = entries[0][1]
    m, sd = best.stat(info.metric)
    pm = f" ± {sd:.2f} over {best.n_finished} seeds" if best.n_finished > 1 else ""
    tm, ts = best.stat(f"test/{key[0]}")
    return (f"Best configuration of **{info.ref}** `{info.name}`: **{best.label()}**, {info.metric} "
            f"{m:.2f}{pm} at the selected epoch; test {key[1]} {tables.fmt_pm(tm, ts, best.n_finished)}.")


# MLflow keeps at most this many characters of a run's description (its note tag) and cuts the
# rest silently; the description drops whole trailing sections instead, and says which.
DESCRIPTION_LIMIT = 8000


def description(info: RunInfo, rows: Sequence[Mapping[str, Any]], limit: int = DESCRIPTION_LIMIT) -> str:
    """The parent run's Markdown description: the result and the reproducing command first (what
    the MLflow UI shows before "Show more"), then the tables, then the command as a block.

    Within ``limit`` characters: tables that do not fit are left out, last ones first (the
    per-class table, the ranked runs, ...), and named in a line pointing to the artifacts."""
    task = _task(info)
    cmd = f"Reproduce: `{info.command}`\n\n" if info.command else ""
    sections = [("the paper-style table", _paper(info, rows, task).markdown())]
    entries = info.entries(rows)
    if info.columns and entries:
        sections.append(("the further figures", "\n### Further figures (selected epoch, mean ± std over seeds)\n\n"
                         + tables.figures_table(entries, info.columns).markdown()))
    if info.paired and len(entries) > 1:
        sections.append(("the paired differences",
                         "\n### Paired per-seed differences of consecutive entries (mean ± sd, wins/seeds)\n\n"
                         + tables.paired_table(entries, [info.metric, *info.columns]).markdown()))
    if _references(info):
        sections.append(("the table read against the papers", "\n### Read against the papers\n\n"
                         + tables.prediction_table(entries, task, _references(info)).markdown()))
    sections.append(("the ranked runs", f"\n### {'Trials' if info.kind == 'sweep' else 'Runs'}, ranked by "
                     f"{info.metric} ({info.mode}) at the selected epoch\n\n" + tables.ranked_table(
                         rows, task=task, metric=info.metric, mode=info.mode, keys=info.axis, limit=10,
                         compact=False).markdown()))
    panels = tables.class_panels(rows)
    if panels and entries and info.kind != "sweep":
        sections.append(("the per-class table", "\n### Per-class segment F (test, mean ± std over seeds)\n\n"
                         + tables.class_table(entries, panels).markdown() + "\nBars: `tables/class_f.png`.\n"))
    failed = len(rows) - len(finished_rows(rows))
    tail = f"\n{failed} trial(s) did not finish (see their runs).\n" if failed else ""
    block = f"Reproduce it with:\n\n```bash\n{info.command}\n```\n" if info.command else ""
    head = headline(info, rows) + "\n\n" + cmd
    end = "\nTables, all trials as Parquet: artifacts `tables/`.\n\n" + block
    left: list[str] = []
    while True:
        note = (f"\n(Left out here for length: {', '.join(reversed(left))}; all of them are in the artifacts "
                "`tables/`.)\n") if left else ""
        text = head + "".join(t for _, t in sections) + tail + note + end
        if len(text) <= limit or len(sections) <= 1:
            return text
        left.append(sections.pop()[0])


def parent_scores(info: RunInfo, rows: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """The metrics a run's parent carries: a sweep's best configuration (``objective``,
    ``best/<metric>``, ``best/test/<k>``, the test scores as ``<k>``, their stds over seeds);
    a comparison's arms (``<arm>/<k>``, ``<arm>/<metric>`` and their ``_std``)."""
    task = _task(info)
    out: dict[str, float] = {}

    def put(key: str, v: float, ok: bool = True) -> None:
        if ok and math.isfinite(v):
            out[key] = v

    for label, g in info.entries(rows):
        n = g.n_finished
        vm, vs = g.stat(info.metric)
        if info.kind == "sweep":
            put(OBJECTIVE, vm)
            put(f"best/{info.metric}", vm)
            put(f"{OBJECTIVE}_std", vs, n > 1)
            for prefix in ("test/", "val/"):
                means, stds = g.scores(task.score_keys, prefix)
                for k in task.score_keys:
                    put(f"best/{prefix}{k}", means[k])
                    put(f"best/{prefix.rstrip('/')}_std/{k}", stds[k], n > 1)
                    if prefix == "test/":
                        put(k, means[k])
            continue
        means, stds = g.scores(task.score_keys)
        put(f"{label}/{info.metric}", vm)
        put(f"{label}/{info.metric}_std", vs, n > 1)
        for k in task.score_keys:
            put(f"{label}/{k}", means[k])
            put(f"{label}/{k}_std", stds[k], n > 1)
    return out


def write_tables(info: RunInfo, rows: Sequence[Mapping[str, Any]], out_dir: str | os.PathLike) -> list[Path]:
    """A run's files in ``out_dir``: ``paper_table.md``/``.html``, ``summary.txt`` (what the
    console shows at the end), ``trials.parquet`` (one row per trial), ``heatmap.png`` when a
    sweep tuned exactly two numeric settings, and ``class_f.md``/``class_f.png`` (per-class F)
    when a comparison's methods report per-class scores."""
    task = _task(info)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paper = _paper(info, rows, task)
    written = []
    for name, text in (("paper_table.md", paper.markdown()), ("paper_table.html", paper.html()),
                       ("summary.txt", "\n".join(closing_lines(info, rows)) + "\n")):
        atomic_write_bytes(out / name, text.encode())
        written.append(out / name)
    written.append(figures.write_trials_parquet(rows, out / "trials.parquet"))
    done = finished_rows(rows)
    numeric = [p for p in info.axis if any(isinstance(r.get(f"config/{p}"), (int, float))
                                           and not isinstance(r.get(f"config/{p}"), bool) for r in done)]
    if info.kind == "sweep" and len(info.axis) == 2 and len(numeric) == 2 and done:
        try:
            written.append(figures.write_heatmap(done, f"config/{numeric[0]}", f"config/{numeric[1]}",
                                                 info.metric, out / "heatmap.png"))
        except ValueError:
            pass  # no finished trial carries the metric: nothing to draw
    entries = info.entries(rows)
    panels = tables.class_panels(rows)
    if panels and entries and info.kind != "sweep":
        atomic_write_bytes(out / "class_f.md", tables.class_table(entries, panels).markdown().encode())
        written += [out / "class_f.md", figures.write_class_bars(entries, panels, out / "class_f.png")]
    return written


def exit_status(rows: Sequence[Mapping[str, Any]], planned: int) -> str:
    """``finished`` (every planned trial), ``failed`` (all came back, some failed) or
    ``interrupted`` (some never came back)."""
    done = len(finished_rows(rows))
    failed = sum(r.get("status") == FAILED for r in rows)
    if done + failed < planned:
        return "interrupted"
    return "finished" if done == planned else "failed"

