"""The labels avtune's VALOR harvests, written in VALOR's file layout for the official code.

``python -m trainables.methods.valor.export DATA OUT [--set KEY=VALUE ...]`` harvests the segment
labels of every split of ``DATA`` with ``Config`` (plus the overrides) exactly as ``fit`` does, and
writes ``OUT/CLIP/segment_pseudo_labels/<id>.npy`` and ``OUT/CLAP/...`` (int64 (10, 25))
(:func:`trainables.tasks.avvp.valor_layout.write_valor_labels`), e.g. into an ``export-llp``
directory of the same data set, so both codes train on the same labels. It prints the labels'
quality against the truth.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

import torch


def export_labels(cfg, data_path, out) -> dict[str, float]:
    """Harvests ``cfg``'s labels on every split of ``data_path`` and writes them under ``out``."""
    from trainables.methods.valor.harvest import harvest_labels
    from trainables.tasks.avvp import backbone as bb
    from trainables.tasks.avvp.valor_layout import write_valor_labels

    data = bb.load_data(cfg, data_path, torch.device("cpu"))
    labels, quality = harvest_labels(cfg, data_path, data)
    splits = [s for s in ("train", "val", "test") if s in labels]
    ids = [v for s in splits for v in data[s].video_ids]
    write_valor_labels(out, ids, {m: torch.cat([labels[s][m] for s in splits]).numpy()
                                  for m in ("visual", "audio")})
    return quality


def main(argv: list[str] | None = None) -> int:
    from trainables.data.format import DataFormatError
    from trainables.data.registry import resolve_data
    from trainables.methods.valor.train import Config

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("data", help="llp-sim-small, llp=PATH or a data set directory (the labels' data)")
    p.add_argument("out", help="the layout's root (e.g. the data set's export-llp directory)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a Config field (teacher, teacher_seed, theta_v, theta_a, ...)")
    a = p.parse_args(argv)
    try:
        kw = {}
        for item in a.set:
            key, _, raw = item.partition("=")
            try:
                kw[key] = ast.literal_eval(raw)
            except (ValueError, SyntaxError):
                kw[key] = raw
        cfg = Config(**kw)
        cfg.validate()
        data = Path(a.data) if Path(a.data).exists() else resolve_data(a.data)
        quality = export_labels(cfg, data, a.out)
    except (ValueError, TypeError, DataFormatError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(" ".join(f"{k}={v:.2f}" for k, v in sorted(quality.items())))
    print(f"wrote VALOR's segment labels of {a.data} under {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
