"""Data-layer benchmark: time to generate each LLP-sim preset and to load its splits.

Usage::

    python -m orchestrator.bench data [--presets llp-sim-tiny,llp-sim-small,llp-sim] [--seed 0]
        [--out DIR] [--threads N]

Each preset is generated into a temporary directory (or ``--out``), then every split is loaded
with ``load_avvp``. Prints one line per step (wall seconds, file size, throughput) and a JSON
summary on the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Runs the benchmark; returns 0."""
    p = argparse.ArgumentParser(prog="python -m orchestrator.bench data", description=__doc__.split("\n")[0])
    p.add_argument("--presets", default="llp-sim-tiny,llp-sim-small,llp-sim")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="keep the generated data sets here (default: a temp dir)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: unchanged)")
    args = p.parse_args(argv)

    import torch

    from trainables.tasks.avvp.data import load_avvp
    from trainables.data.format import SPLITS, data_file
    from trainables.tasks.avvp.llp_sim import make_preset

    if args.threads:
        torch.set_num_threads(args.threads)
    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="avtune-bench-data-"))
    summary: dict[str, dict[str, float]] = {}
    try:
        for name in [s.strip() for s in args.presets.split(",") if s.strip()]:
            out = root / name
            t0 = time.perf_counter()
            path = make_preset(name, out, seed=args.seed)
            gen = time.perf_counter() - t0
            size = data_file(path).stat().st_size / 2**20
            row = {"generate_s": round(gen, 2), "size_mib": round(size, 1)}
            print(f"{name}: generated in {gen:.2f} s ({size:.0f} MiB, {size / gen:.0f} MiB/s), "
                  f"{os.cpu_count()} CPUs")
            for split in SPLITS:
                t0 = time.perf_counter()
                s = load_avvp(path, split)
                dt = time.perf_counter() - t0
                row[f"load_{split}_s"] = round(dt, 3)
                print(f"  load {split}: {len(s)} videos in {dt:.3f} s "
                      f"({len(s) / max(dt, 1e-9):.0f} videos/s)")
            summary[name] = row
    finally:
        if not args.out:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(summary))
    return 0
