"""Tables of runs: one renderer (:class:`Table`, as plain text, Markdown or HTML), one mean ± std
formatter (:func:`fmt_pm`), and the tables every report shows, built from rows and groups
(:mod:`orchestrator.rows`): the paper-style table beside the published rows, the ranked
configurations, the per-class F table and the prediction table (ours ± std, published, error).
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from orchestrator.rows import FINISHED, Group, finite, group_rows, rank_groups
from trainables.core.method import TaskSpec

# Per-class scores a task may report for the test split: ``test/class_<modality>/<class>``.
CLASS_PREFIX = "test/class_"
_MODALITY = {"A": "audio", "V": "visual"}


def fmt(v: Any, digits: int = 1) -> str:
    """A score with ``digits`` decimals, ``-`` when missing."""
    return f"{float(v):.{digits}f}" if finite(v) else "-"


def fmt_pm(mean: float, std: float, n: int, digits: int = 1, sep: str = " ± ") -> str:
    """``61.2`` for one run, ``61.2 ± 0.4`` (sample std) for several; ``-`` when missing."""
    if not finite(mean):
        return "-"
    if n <= 1 or not finite(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f}{sep}{std:.{digits}f}"


@dataclass
class Table:
    """A table of strings rendered three ways.

    Attributes:
        header: Column labels. In plain text, a label with a space is split at its first space
            into a group row and a name row (``Seg A`` -> ``Seg`` over ``A``).
        rows: Cells, one list per row.
        left: How many leading columns are left-aligned (the rest right-aligned).
        notes: Lines under the table.
        bold: How many leading rows are the run's own (bold in HTML).
        plain: How many leading columns keep their label whole in plain text (default ``left``).
    """

    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    left: int = 1
    notes: list[str] = field(default_factory=list)
    bold: int = 0
    plain: int | None = None

    def text(self, indent: str = "") -> str:
        k = self.left if self.plain is None else self.plain
        top, bottom = _header_rows(self.header[k:])
        head1 = [""] * k + top
        head2 = list(self.header[:k]) + bottom
        widths = [max(len(x) for x in col) for col in zip(head1, head2, *self.rows)]

        def line(cells: Sequence[str]) -> str:
            return indent + "  ".join(c.ljust(w) if j < self.left else c.rjust(w)
                                      for j, (c, w) in enumerate(zip(cells, widths))).rstrip()

        out = [line(head1)] if any(head1) else []
        out += [line(head2), indent + "  ".join("-" * w for w in widths)]
        out += [line(r) for r in self.rows] + [indent + n for n in self.notes]
        return "\n".join(out)

    def markdown(self) -> str:
        lines = ["| " + " | ".join(self.header) + " |",
                 "|" + "|".join(["---"] * self.left + ["---:"] * (len(self.header) - self.left)) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in self.rows]
        notes = "\n\n" + "\n\n".join(self.notes) if self.notes else ""
        return "\n".join(lines) + notes + "\n"

    def html(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.header)
        body = []
        for i, r in enumerate(self.rows):
            style = ' style="font-weight:bold"' if i < self.bold else ""
            body.append(f"<tr{style}>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>")
        notes = "".join(f"<p>{html.escape(n)}</p>" for n in self.notes)
        return ("<!doctype html><html><head><meta charset='utf-8'><title>avtune</title>"
                "<style>table{border-collapse:collapse}td,th{border:1px solid #999;padding:3px 8px;"
                "text-align:right}td:first-child{text-align:left}</style></head><body>"
                f"<table><tr>{head}</tr>{''.join(body)}</table>{notes}</body></html>\n")


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


def short_ref(label: str) -> str:
    """A published row's label without its bracketed note, marked ``*`` (compact tables)."""
    short = re.sub(r"\s*\[[^\]]*\]\s*$", "", label)
    return short + " *" if short != label else label


# ----------------------------------------------------------------------------- the tables

def paper_table(entries: Sequence[tuple[str, Group]], task: TaskSpec, *, methods: Sequence[str] = (),
                data_note: str = "", marks: Mapping[str, str] | None = None,
                mark_notes: Mapping[str, str] | None = None, compact: bool = False,
                metric: str | None = None) -> Table:
    """The run's rows (test scores, mean ± std over each group's seeds) beside the published
    rows of ``methods`` (the task's reference rows). ``marks`` flags rows of a protocol variant
    (e.g. thresholds chosen on validation) with a symbol explained in ``mark_notes``; with
    ``metric`` each row also shows its finished seeds and that validation metric."""
    marks, mark_notes = dict(marks or {}), dict(mark_notes or {})
    sep = "±" if compact else " ± "
    extra = ["seeds", metric] if metric else []
    body = []
    for label, g in entries:
        means, stds = g.scores(task.score_keys)
        name = label + (f" {marks[label]}" if label in marks else "")
        cells = [f"{g.n_finished}/{len(g.rows)}", fmt_pm(*g.stat(metric), g.n_finished, digits=2, sep=sep)] if metric else []
        body.append([name, *cells] + [fmt_pm(means[k], stds[k], g.n_finished, sep=sep) for k in task.score_keys])
    refs = task.references_for(methods)
    for name, vals in refs:
        body.append([short_ref(name) if compact else name] + [""] * len(extra) + [fmt(v) for v in vals])
    seeds = max((g.n_finished for _, g in entries), default=1)
    notes = [f"This run's rows: test split of {data_note}, at the epoch selected on validation."
             + (f" Mean ± standard deviation over {seeds} seeds." if seeds > 1 else "")
             + (f" {'* ' if compact else ''}{task.reference_note}" if refs else "")]
    notes += [f"{sym} {mark_notes[sym]}" for sym in dict.fromkeys(marks.values()) if sym in mark_notes]
    return Table(["Method", *extra, *task.score_labels], body, notes=notes, bold=len(entries),
                 plain=1 + len(extra))


def ranked_table(rows: Sequence[Mapping[str, Any]], *, task: TaskSpec, metric: str, mode: str,
                 keys: Sequence[str] | None = None, limit: int | None = None,
                 compact: bool = True) -> Table:
    """Every configuration ranked by its selected validation ``metric`` (mean ± std over seeds),
    with its settings, the selected epoch (from 1; mean over seeds) and its test scores (means in
    ``compact`` console tables, mean ± std otherwise); unfinished trials are listed under it."""
    groups = rank_groups(group_rows(rows, keys), metric, mode)
    seeds = max((len(g.rows) for g in groups), default=1)
    shown = [g for g in groups if g.n_finished]
    cut = shown[:limit] if limit is not None else shown
    labels = [f"test {lab}" if " " not in lab and compact else lab for lab in task.score_labels]
    header = ["#", "settings"] + (["seeds"] if seeds > 1 else []) + \
        [f"{metric} ({mode})" if compact else metric] + (["epoch"] if compact else []) + labels
    body = []
    for i, g in enumerate(cut, 1):
        m, sd = g.stat(metric)
        cells = [str(i), g.label()] + ([f"{g.n_finished}/{len(g.rows)}" if compact else str(g.n_finished)]
                                       if seeds > 1 else [])
        cells.append(fmt_pm(m, sd, g.n_finished, digits=2, sep="±" if compact else " ± "))
        if compact:
            ep = g.stat("best_epoch")[0] + 1  # the selected epoch, counted from 1
            cells.append("-" if not finite(ep) else f"{ep:.0f}" if g.n_finished == 1 else f"{ep:.1f}")
        means, stds = g.scores(task.score_keys)
        # Console tables show test means only (the std is in the paper table): they stay narrow.
        cells += [fmt(means[k]) if compact else fmt_pm(means[k], stds[k], g.n_finished)
                  for k in task.score_keys]
        body.append(cells)
    notes = [] if body else ["(no finished trial)"]
    for g in groups:
        for r in g.rows:
            if r.get("status", FINISHED) != FINISHED:
                seed = f" seed={r['seed']}" if r.get("seed") is not None and seeds > 1 else ""
                notes.append(f"   {str(r.get('status', '?')).lower():>11}: {g.label()}{seed}"
                             + (f" ({r['trial_id']})" if r.get("trial_id") else ""))
    if len(shown) > len(cut):
        notes.append(f"   ... {len(shown) - len(cut)} more")
    return Table(header, body, left=2, notes=notes, plain=len(header) - len(labels))


def class_panels(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """The per-class score names of finished rows by modality (``{"A": [...], "V": [...]}``),
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


def class_stat(g: Group, mod: str, name: str) -> tuple[float, float]:
    return g.stat(f"{CLASS_PREFIX}{mod}/{name}")


def class_table(entries: Sequence[tuple[str, Group]], panels: Mapping[str, Sequence[str]], *,
                compact: bool = False) -> Table:
    """One row per class: each entry's audio F, then each entry's visual F (mean ± std over
    seeds; means only when ``compact``)."""
    mods = list(panels)
    names = list(dict.fromkeys(n for m in mods for n in panels[m]))
    header = ["class"] + [f"{_MODALITY.get(m, m)}{' ' if compact else ' F, '}{label}"
                          for m in mods for label, _ in entries]
    body = []
    for n in names:
        cells = [n]
        for m in mods:
            for _, g in entries:
                v, sd = class_stat(g, m, n)
                cells.append(fmt(v) if compact else fmt_pm(v, sd, g.n_finished))
        body.append(cells)
    return Table(header, body)


def figures_table(entries: Sequence[tuple[str, Group]], keys: Sequence[str]) -> Table:
    """Further result keys per entry (mean ± std over its seeds, at the selected epoch)."""
    body = [[label] + [fmt_pm(*g.stat(k), g.n_finished, digits=2) for k in keys] for label, g in entries]
    return Table(["entry", *keys], body, plain=1 + len(keys))


def paired_steps(entries: Sequence[tuple[str, Group]], key: str) -> list[dict[str, Any]]:
    """Per-seed paired differences of ``key`` between consecutive entries (listed from the
    expected worst to the expected best). Entries trained under the same seed share the data
    order and initialisation, so the per-seed difference is a sharper test of "B beats A" than
    two independent means.

    Returns:
        One dict per consecutive pair: ``lower``, ``higher``, ``diffs`` (``b - a`` per seed both
        finished), ``mean``, ``sd`` (0 with one seed) and ``wins`` (seeds where ``b > a``).
    """
    import statistics

    steps = []
    for (la, ga), (lb, gb) in zip(entries, entries[1:]):
        a = {r.get("seed"): r.get(key) for r in ga.finished if finite(r.get(key))}
        b = {r.get("seed"): r.get(key) for r in gb.finished if finite(r.get(key))}
        seeds = sorted(set(a) & set(b), key=lambda s: (s is None, s or 0))
        diffs = [float(b[s]) - float(a[s]) for s in seeds]
        steps.append({"lower": la, "higher": lb, "diffs": diffs,
                      "mean": statistics.mean(diffs) if diffs else float("nan"),
                      "sd": statistics.stdev(diffs) if len(diffs) > 1 else 0.0,
                      "wins": sum(d > 0 for d in diffs)})
    return steps


def paired_table(entries: Sequence[tuple[str, Group]], keys: Sequence[str]) -> Table:
    """:func:`paired_steps` of each key: mean ± sd of the per-seed difference (wins/seeds)."""
    per_key = [paired_steps(entries, k) for k in keys]
    body = []
    for i, step in enumerate(per_key[0] if per_key else []):
        cells = [f"{step['lower']} < {step['higher']}"]
        for steps in per_key:
            st = steps[i]
            cells.append(f"{st['mean']:+.2f} ± {st['sd']:.2f} ({st['wins']}/{len(st['diffs'])})"
                         if st["diffs"] else "-")
        body.append(cells)
    return Table(["step", *keys], body, plain=1 + len(keys))


def prediction_table(entries: Sequence[tuple[str, Group]], task: TaskSpec,
                     references: Mapping[str, str]) -> Table:
    """A prediction read against the papers: per entry, its test scores (mean ± std), the
    published row it predicts (``references``: entry label -> the reference row's label) and
    the error (ours minus published), score by score."""
    published = {name: vals for rows in task.reference_rows.values() for name, vals in rows}
    body = []
    for label, g in entries:
        means, stds = g.scores(task.score_keys)
        body.append([label, "ours"] + [fmt_pm(means[k], stds[k], g.n_finished) for k in task.score_keys])
        ref = references.get(label)
        if ref in published:
            vals = list(published[ref])
            body.append(["", f"published ({short_ref(ref)})"] + [fmt(v) for v in vals])
            body.append(["", "error"] + [f"{means[k] - v:+.1f}" if finite(means[k]) else "-"
                                         for k, v in zip(task.score_keys, vals)])
    return Table(["Run", "", *task.score_labels], body, left=2,
                 notes=[f"error = ours minus published. {task.reference_note}"])
