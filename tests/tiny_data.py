"""A small AVVP data set with hidden truth for method tests (importable from every test folder:
``tests/`` is on ``sys.path``, see ``tests/conftest.py``)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from trainables.data.format import write_dataset

C, T = 25, 10


def tiny_avvp(path: Path, *, n=(256, 64, 64), dims=(16, 24, 8), seed: int = 0,
              av_share: float = 0.4, frames: int = 0, active: int = 5) -> Path:
    """Writes a small AVVP data set with hidden truth whose features carry the class signal.

    Each video has one or two of the first ``active`` classes (few classes so that a few
    hundred videos suffice to learn them); each class event is audio-only, visual-only or both,
    spans a random run of segments, and adds the class prototype of its modality to those
    segments' features (plus Gaussian noise). Weak labels are the union of both modalities.
    """
    rng = np.random.default_rng(seed)
    da, dv, dm = dims
    proto_a = rng.normal(size=(C, da)) * 2
    proto_v = rng.normal(size=(C, dv)) * 2
    proto_m = rng.normal(size=(C, dm)) * 2
    ids, split, cols = [], [], {k: [] for k in ("audio", "visual", "motion", "labels",
                                                "gt_audio", "gt_visual")}
    for name, count in zip(("train", "val", "test"), n):
        for i in range(count):
            ga = np.zeros((T, C), np.uint8)
            gv = np.zeros((T, C), np.uint8)
            for c in rng.choice(active, size=rng.integers(1, 3), replace=False):
                u = rng.random()
                mods = ("a", "v") if u < av_share else (("a",) if u < (1 + av_share) / 2 else ("v",))
                for m in mods:
                    s = rng.integers(0, T - 2)
                    e = rng.integers(s + 2, T + 1)
                    (ga if m == "a" else gv)[s:e, c] = 1
            a = ga @ proto_a + rng.normal(size=(T, da))
            v = gv @ proto_v + rng.normal(size=(T, dv))
            mo = gv @ proto_m + rng.normal(size=(T, dm))
            if frames:
                v = v[:, None, :] + 0.5 * rng.normal(size=(T, frames, dv))
            cols["audio"].append(a)
            cols["visual"].append(v)
            cols["motion"].append(mo)
            cols["labels"].append((ga.any(0) | gv.any(0)).astype(np.uint8))
            cols["gt_audio"].append(ga)
            cols["gt_visual"].append(gv)
            ids.append(f"{name}{i:04d}_0_10")
            split.append(name)
    arrays = {k: np.stack(v).astype(np.float32 if k in ("audio", "visual", "motion") else np.uint8)
              for k, v in cols.items()}
    return write_dataset(path, video_ids=ids, split=split, arrays=arrays, kind="llp-sim",
                         params={"test": "tiny", "seed": seed, "n": list(n)},
                         truth_splits=("train", "val", "test"))


def generate_in_subprocess(func: str, out: Path, threads: int, workers: int, **kwargs) -> str:
    """Runs the generator ``func`` (``module:function``) in a fresh interpreter whose BLAS/OpenMP
    pools have ``threads`` threads, and returns the SHA-256 of the data file it writes: how the
    simulators' byte determinism across thread counts is checked (a pool size is fixed at import)."""
    module, name = func.split(":")
    code = (f"import sys; from {module} import {name}; "
            f"{name}(sys.argv[1], workers={workers}, **{kwargs!r})")
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads),
           "MKL_NUM_THREADS": str(threads)}
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code, str(out)], check=True, cwd=root, env=env)
    return hashlib.sha256((out / "avtune.parquet").read_bytes()).hexdigest()
