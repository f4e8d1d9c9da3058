"""AR-sim (simulated audio-visual action recognition with controlled noise), real clip features.

AR-sim model (all draws from one ``numpy`` generator seeded by ``seed``, fully vectorised):

* Classes come in pairs sharing a group component (half of the prototype variance), so every
  class has a fixed "similar" class, its partner, which the asymmetric label noise flips to.
* A video of class ``y`` has visual clips ``s_v * P_v[y] + n_video_v + n_clip`` and audio clips
  ``s_a * P_a[y] + n_video_a + n_clip``; the per-video nuisance terms are independent across the
  two modalities, so only the class is shared between what a video looks like and sounds like.
  That is what cross-modal agreement can recover without labels.
* Noisy correspondence: in a share ``q_c`` of the videos of class ``c`` the audio is replaced by
  audio of an unrelated class (neither ``y`` nor its similar class) or by one of a few background
  sounds (``corr_ok = 0``). ``q_c`` is uniform or follows a skewed, long-tailed per-class profile
  (some classes mostly clean, a few very noisy, as in the Kinetics statistics) with the requested
  mean. Correspondence noise is a property of the videos, so it is present in every split.
* Label noise (training split only; validation labels are clean): symmetric (uniformly random
  other class) or asymmetric (the similar class), with exactly ``round(r * n_c)`` flipped videos
  per class.

Columns: ``visual`` (T, Dv), ``audio`` (T, Da), ``label`` (1,) int64 given label, ``clean_label``
(1,) int64, ``corr_ok`` (1,) uint8. ``truth_splits`` = ``["train", "val"]``.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trainables.data.format import DataFormatError, read_meta, read_split, write_dataset

# Bump whenever the generator's output for given parameters changes (it keys preset caches).
SIM_VERSION = 2

KIND_SIM = "avar-sim"
KIND_REAL = "avar"

# Preset sizes. ``avar-sim`` follows the issue (mini-Kinetics-like: 50 classes, 400/50 videos per
# class, 10 clips, 512-d R(2+1)D-18-like visual and 512-d audio); the big preset is stored as
# float16 to keep the file near 400 MB.
PRESETS: dict[str, dict[str, Any]] = {
    # Class-signal scales halved against the 128-d small preset: the aggregate signal-to-noise of
    # a d-dimensional embedding grows with sqrt(d), and at the default scales 512-d made the task
    # trivial (clean-ish late-fusion CE at 97% clip top-1 after 2 epochs).
    "avar-sim": dict(num_classes=50, train_per_class=400, val_per_class=50, clips=10,
                     visual_dim=512, audio_dim=512, feature_dtype="float16",
                     visual_scale=0.15, audio_scale=0.125),
    "avar-sim-small": dict(num_classes=20, train_per_class=100, val_per_class=25, clips=10,
                           visual_dim=128, audio_dim=128, feature_dtype="float32"),
    "avar-sim-tiny": dict(num_classes=5, train_per_class=16, val_per_class=4, clips=4,
                          visual_dim=16, audio_dim=16, feature_dtype="float32"),
}

# Default noise: the headline setting (60% symmetric label noise, 40% mean noisy
# correspondence with the skewed per-class profile).
DEFAULT_NOISE: dict[str, Any] = dict(label_noise="sym", noise_rate=0.6, corr_rate=0.4,
                                     corr_profile="skewed")

# Signal/nuisance scales (per-dimension std of the nuisance terms; prototype entries ~ N(0, 1)).
# With video_noise 1.0 the class signal was too weak for any label-free cross-modal learning on
# 2,000 videos (contrastive losses stayed at log K); at 0.5 a clean-label late-fusion MLP reaches
# ~97% clip top-1 on the small preset while 60% symmetric noise drives it to ~35% (final epoch).
DEFAULT_SIGNAL: dict[str, float] = dict(visual_scale=0.30, audio_scale=0.25, video_noise=0.5,
                                        clip_noise=0.6, group_share=0.5, background_sounds=4)


class AvarDataError(ValueError):
    """Bad AVAR input: the message names the file, line or video id."""


def avar_sim_params(preset: str, **overrides: Any) -> dict[str, Any]:
    """The full, validated parameter dict of an AR-sim preset (what keys the cache).

    Args:
        preset: ``avar-sim``, ``avar-sim-small`` or ``avar-sim-tiny``.
        **overrides: Noise settings (``label_noise`` in ``sym``/``asym``/``none``, ``noise_rate``,
            ``corr_rate``, ``corr_profile`` in ``uniform``/``skewed``), size or signal settings.

    Returns:
        The parameters, JSON-serialisable.
    """
    if preset not in PRESETS:
        raise AvarDataError(f"unknown AR-sim preset {preset!r}; expected one of {sorted(PRESETS)}")
    p: dict[str, Any] = {"preset": preset, **DEFAULT_NOISE, **DEFAULT_SIGNAL, **PRESETS[preset]}
    unknown = sorted(set(overrides) - set(p))
    if unknown:
        raise AvarDataError(f"unknown AR-sim option(s) {unknown}; known: {sorted(p)}")
    p.update(overrides)
    if p["label_noise"] not in ("sym", "asym", "none"):
        raise AvarDataError(f"label_noise must be 'sym', 'asym' or 'none', got {p['label_noise']!r}")
    if p["corr_profile"] not in ("uniform", "skewed"):
        raise AvarDataError(f"corr_profile must be 'uniform' or 'skewed', got {p['corr_profile']!r}")
    r, q = float(p["noise_rate"]), float(p["corr_rate"])
    if p["label_noise"] == "none":
        r = 0.0
    if not 0.0 <= r < 1.0:
        raise AvarDataError(f"noise_rate must be in [0, 1), got {r}")
    if p["label_noise"] == "asym" and r >= 0.5:
        raise AvarDataError(f"asymmetric noise_rate must be < 0.5 (else the similar class wins), got {r}")
    if not 0.0 <= q <= 0.6:
        raise AvarDataError(f"corr_rate must be in [0, 0.6], got {q}")
    if int(p["num_classes"]) < 4:
        raise AvarDataError(f"num_classes must be >= 4 (unrelated classes are needed), got {p['num_classes']}")
    p["noise_rate"], p["corr_rate"] = r, q
    return p


def corr_profile(num_classes: int, mean: float, profile: str, rng: np.random.Generator) -> np.ndarray:
    """Per-class noisy-correspondence ratios with the given mean.

    ``skewed`` draws a right-skewed (Gamma, shape 2) profile, capped at 0.8, rescaled so that the
    mean is exact: most classes moderately noisy, a few very noisy.
    """
    if profile == "uniform" or mean == 0.0:
        return np.full(num_classes, mean)
    cap = 0.8
    w = rng.gamma(2.0, 1.0, num_classes)
    q = w / w.mean() * mean
    # Capping moves mass; redistribute it to the uncapped classes until the mean is exact.
    for _ in range(100):
        q = np.minimum(q, cap)
        gap = mean * num_classes - q.sum()
        free = q < cap
        if gap <= 1e-12 or not free.any():
            break
        q[free] += gap * q[free] / q[free].sum()
    return q


def _pick_per_class(y: np.ndarray, rates: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask choosing exactly ``round(rates[c] * n_c)`` random videos of each class c."""
    n = len(y)
    order = np.lexsort((rng.random(n), y))  # grouped by class, random within class
    counts = np.bincount(y, minlength=len(rates))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - np.repeat(starts, counts)
    return rank < np.round(rates * counts)[y]


def _similar_classes(k: int) -> np.ndarray:
    """For every class, its "similar" class: the partner sharing its group component (2i <-> 2i+1;
    with an odd K the last class, alone in its group, maps to K-2)."""
    sim = np.arange(k) ^ 1
    if k % 2:
        sim[k - 1] = k - 2
    return sim


def generate_avar_sim(params: dict[str, Any], seed: int = 0) -> dict[str, Any]:
    """Generates AR-sim arrays in memory (see the module docstring).

    Returns:
        Dict with ``video_ids``, ``split``, ``arrays`` (column -> array) and ``extra`` (the
        realised per-class ratios and the similar-class map).
    """
    rng = np.random.default_rng(seed)
    k, t = int(params["num_classes"]), int(params["clips"])
    dv, da = int(params["visual_dim"]), int(params["audio_dim"])
    gs = float(params["group_share"])
    groups = (k + 1) // 2
    pv = math.sqrt(gs) * rng.standard_normal((groups, dv))[np.arange(k) // 2] + \
        math.sqrt(1 - gs) * rng.standard_normal((k, dv))
    pa = math.sqrt(gs) * rng.standard_normal((groups, da))[np.arange(k) // 2] + \
        math.sqrt(1 - gs) * rng.standard_normal((k, da))
    pb = rng.standard_normal((int(params["background_sounds"]), da))
    similar = _similar_classes(k)

    n_tr, n_va = k * int(params["train_per_class"]), k * int(params["val_per_class"])
    n = n_tr + n_va
    y = np.concatenate([np.repeat(np.arange(k), params["train_per_class"]),
                        np.repeat(np.arange(k), params["val_per_class"])]).astype(np.int64)
    is_train = np.arange(n) < n_tr

    # Noisy correspondence: per-class ratios, exact counts per class and split.
    q = corr_profile(k, float(params["corr_rate"]), params["corr_profile"], rng)
    bad = np.zeros(n, dtype=bool)
    for part in (is_train, ~is_train):
        bad[part] = _pick_per_class(y[part], q, rng)
    # Replacement audio source: half an unrelated class, half background.
    use_bg = rng.random(n) < 0.5
    # An unrelated class: neither y nor similar[y]; draw among the k-2 others by offset.
    others = np.stack([np.setdiff1d(np.arange(k), [c, similar[c]])[: k - 2] for c in range(k)])
    unrelated = others[y, rng.integers(0, others.shape[1], n)]
    bg = rng.integers(0, pb.shape[0], n)

    sv, sa = float(params["visual_scale"]), float(params["audio_scale"])
    vn, cn = float(params["video_noise"]), float(params["clip_noise"])
    dtype = np.dtype(params["feature_dtype"])
    a_cls = np.where(bad, unrelated, y)
    a_mean = np.where((bad & use_bg)[:, None], pb[bg], pa[a_cls])

    def features(mean: np.ndarray, d: int) -> np.ndarray:
        # Signal + per-video nuisance + per-clip noise. The clip noise is drawn in blocks of
        # videos straight into the stored dtype: same numbers as one big draw (the generator
        # fills C order), but float64 temporaries stay small for the 50-class preset.
        out = np.empty((n, t, d), dtype=dtype)
        base = mean[:, None, :] + vn * rng.standard_normal((n, 1, d))
        for s in range(0, n, 2048):
            e = min(s + 2048, n)
            out[s:e] = base[s:e] + cn * rng.standard_normal((e - s, t, d))
        return out

    vis = features(sv * pv[y], dv)
    aud = features(sa * a_mean, da)

    # Label noise on the training split only.
    label = y.copy()
    r = float(params["noise_rate"])
    if params["label_noise"] != "none" and r > 0:
        flip = _pick_per_class(y[:n_tr], np.full(k, r), rng)
        if params["label_noise"] == "sym":
            new = (y[:n_tr] + rng.integers(1, k, n_tr)) % k
        else:
            new = similar[y[:n_tr]]
        label[:n_tr] = np.where(flip, new, y[:n_tr])

    split = np.where(is_train, "train", "val")
    ids = [f"avsim_{s}_{i:06d}" for s, i in zip(split.tolist(), np.arange(n).tolist())]
    arrays = {
        "visual": vis,
        "audio": aud,
        "label": label[:, None],
        "clean_label": y[:, None],
        "corr_ok": (~bad).astype(np.uint8)[:, None],
    }
    extra = {
        "corr_ratio_per_class": [float(x) for x in q],
        "similar_class": [int(x) for x in similar],
        "realised": {
            "label_noise_train": float((label[:n_tr] != y[:n_tr]).mean()),
            "corr_noise_train": float(bad[:n_tr].mean()),
            "corr_noise_val": float(bad[n_tr:].mean()),
        },
    }
    return dict(video_ids=ids, split=split.tolist(), arrays=arrays, extra=extra)


def make_avar_sim(preset: str, out: str | os.PathLike, *, seed: int = 0, **noise: Any) -> Path:
    """Generates an AR-sim preset and writes it (atomically) to ``out``.

    Args:
        preset: ``avar-sim``, ``avar-sim-small`` or ``avar-sim-tiny``.
        out: Output directory (``avtune.parquet`` inside) or ``.parquet`` path.
        seed: Generation seed; the same seed and options give identical files.
        **noise: ``label_noise``, ``noise_rate``, ``corr_rate``, ``corr_profile`` (see
            :func:`avar_sim_params`), or size/signal overrides.

    Returns:
        The path of the written data file.
    """
    params = avar_sim_params(preset, **noise)
    g = generate_avar_sim(params, seed=seed)
    return write_dataset(out, video_ids=g["video_ids"], split=g["split"], arrays=g["arrays"],
                         kind=KIND_SIM, params={**params, "seed": int(seed), "version": SIM_VERSION},
                         truth_splits=["train", "val"], extra=g["extra"])


def _load_npy(path: Path, vid: str, modality: str) -> np.ndarray:
    if not path.is_file():
        raise AvarDataError(f"{path}: missing {modality} features for video {vid!r}")
    try:
        a = np.load(path, allow_pickle=False)
    except Exception as e:  # numpy raises ValueError/OSError/EOFError for corrupt files
        raise AvarDataError(f"{path}: unreadable .npy for video {vid!r} ({e})") from e
    if a.ndim != 2:
        raise AvarDataError(f"{path}: video {vid!r} {modality} features must be (clips, dim), got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.floating) and not np.issubdtype(a.dtype, np.integer):
        raise AvarDataError(f"{path}: video {vid!r} {modality} features have dtype {a.dtype}")
    if not np.isfinite(a).all():
        raise AvarDataError(f"{path}: video {vid!r} {modality} features contain NaN or inf")
    return a.astype(np.float32, copy=False)


def convert_avar(feats_dir: str | os.PathLike, labels_csv: str | os.PathLike,
                 out: str | os.PathLike, *, num_classes: int | None = None) -> Path:
    """Converts real precomputed clip features into the avtune format (kind ``avar``).

    Args:
        feats_dir: Directory with ``visual/<video_id>.npy`` and ``audio/<video_id>.npy``, each a
            ``(clips, dim)`` array; every video must have the same shapes per modality.
        labels_csv: CSV with header ``video_id,label,split`` (label: class index; split: ``train``,
            ``val`` or ``test``).
        out: Output directory or ``.parquet`` path; nothing is written unless every input is valid.
        num_classes: Number of classes (default: largest label + 1).

    Returns:
        The path of the written data file.

    Raises:
        AvarDataError: Naming the file and line or video id of the first problem found.
    """
    feats, csv_path = Path(feats_dir), Path(labels_csv)
    if not csv_path.is_file():
        raise AvarDataError(f"{csv_path}: labels CSV not found")
    for m in ("visual", "audio"):
        if not (feats / m).is_dir():
            raise AvarDataError(f"{feats / m}: feature directory not found")
    ids: list[str] = []
    labels: list[int] = []
    splits: list[str] = []
    seen: dict[str, int] = {}
    with open(csv_path, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            raise AvarDataError(f"{csv_path}: empty file (expected header video_id,label,split)")
        header = [h.strip() for h in header]
        missing = [c for c in ("video_id", "label", "split") if c not in header]
        if missing:
            raise AvarDataError(f"{csv_path}:1: missing column(s) {missing} in header {header}")
        col = {c: header.index(c) for c in ("video_id", "label", "split")}
        for lineno, row in enumerate(reader, start=2):
            if not row or all(not x.strip() for x in row):
                continue
            if len(row) != len(header):
                raise AvarDataError(f"{csv_path}:{lineno}: {len(row)} fields, header has {len(header)}")
            vid, lab, sp = (row[col[c]].strip() for c in ("video_id", "label", "split"))
            if not vid or "/" in vid or vid.startswith("."):
                raise AvarDataError(f"{csv_path}:{lineno}: bad video_id {vid!r}")
            if vid in seen:
                raise AvarDataError(f"{csv_path}:{lineno}: duplicate video_id {vid!r} (first on line {seen[vid]})")
            try:
                li = int(lab)
            except ValueError:
                raise AvarDataError(f"{csv_path}:{lineno}: label {lab!r} of {vid!r} is not an integer class index") from None
            if li < 0 or (num_classes is not None and li >= num_classes):
                raise AvarDataError(f"{csv_path}:{lineno}: label {li} of {vid!r} outside [0, {num_classes or 'inf'})")
            if sp not in ("train", "val", "test"):
                raise AvarDataError(f"{csv_path}:{lineno}: unknown split {sp!r} for {vid!r} (expected train, val or test)")
            seen[vid] = lineno
            ids.append(vid)
            labels.append(li)
            splits.append(sp)
    if not ids:
        raise AvarDataError(f"{csv_path}: no videos listed")
    k = int(num_classes) if num_classes is not None else max(labels) + 1
    arrays: dict[str, np.ndarray] = {}
    for m in ("visual", "audio"):
        rows = []
        shape = None
        for vid in ids:
            a = _load_npy(feats / m / f"{vid}.npy", vid, m)
            if shape is None:
                shape = a.shape
            elif a.shape != shape:
                raise AvarDataError(f"{feats / m / (vid + '.npy')}: video {vid!r} {m} shape {a.shape} differs from {shape} (first video)")
            rows.append(a)
        arrays[m] = np.stack(rows)
    if arrays["visual"].shape[1] != arrays["audio"].shape[1]:
        raise AvarDataError(f"{feats}: visual has {arrays['visual'].shape[1]} clips per video, audio {arrays['audio'].shape[1]}")
    arrays["label"] = np.asarray(labels, dtype=np.int64)[:, None]
    params = {"feats_dir": str(feats.resolve()), "labels_csv": str(csv_path.resolve()), "num_classes": k,
              "clips": int(arrays["visual"].shape[1]), "visual_dim": int(arrays["visual"].shape[2]),
              "audio_dim": int(arrays["audio"].shape[2])}
    return write_dataset(out, video_ids=ids, split=splits, arrays=arrays, kind=KIND_REAL, params=params)


@dataclass
class AVARSplit:
    """One split of an AVAR data set as tensors.

    Attributes:
        video_ids: One id per video.
        visual: (N, T, Dv) float32 clip embeddings.
        audio: (N, T, Da) float32 clip embeddings.
        label: (N,) int64 given (possibly noisy) labels.
        clean_label: (N,) int64 true labels, or None where the split has no truth.
        corr_ok: (N,) bool correspondence flags, or None.
        num_classes: K.
    """

    video_ids: list[str]
    visual: torch.Tensor
    audio: torch.Tensor
    label: torch.Tensor
    clean_label: torch.Tensor | None
    corr_ok: torch.Tensor | None
    num_classes: int

    def __len__(self) -> int:
        return len(self.video_ids)

    def to(self, device: str | torch.device) -> "AVARSplit":
        """Moves every tensor to ``device``."""
        mv = lambda x: None if x is None else x.to(device)  # noqa: E731
        return AVARSplit(self.video_ids, mv(self.visual), mv(self.audio), mv(self.label),
                         mv(self.clean_label), mv(self.corr_ok), self.num_classes)


def load_avar(path: str | os.PathLike, split: str) -> AVARSplit:
    """Loads one split of an AVAR data set (``avar-sim`` or ``avar``) as CPU tensors.

    Truth (``clean_label``, ``corr_ok``) is returned only for splits in ``truth_splits``.
    """
    meta = read_meta(path)
    if meta["kind"] not in (KIND_SIM, KIND_REAL):
        raise DataFormatError(f"{path}: kind {meta['kind']!r} is not an AVAR data set")
    truth = split in meta["truth_splits"] and "clean_label" in meta["shapes"]
    cols = ["visual", "audio", "label", *(("clean_label", "corr_ok") if truth else ())]
    ids, arr = read_split(path, split, cols)
    # Arrow-backed arrays are read-only; torch wants writable memory.
    arr = {k: np.require(v, requirements="W") for k, v in arr.items()}
    return AVARSplit(
        video_ids=ids,
        visual=torch.from_numpy(arr["visual"]).float(),
        audio=torch.from_numpy(arr["audio"]).float(),
        label=torch.from_numpy(arr["label"][:, 0].astype(np.int64)),
        clean_label=torch.from_numpy(arr["clean_label"][:, 0].astype(np.int64)) if truth else None,
        corr_ok=torch.from_numpy(arr["corr_ok"][:, 0] != 0) if truth else None,
        num_classes=int(meta["params"]["num_classes"]),
    )
