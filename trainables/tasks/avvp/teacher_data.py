"""Teacher (CLIP/CLAP) segment embeddings in an AVVP data set, and the converter that adds them.

A data set may carry, beside its features, the segment embeddings of a visual (image-text) and an
audio (audio-text) teacher: columns ``teacher_visual`` and ``teacher_audio`` shaped (T, D), and in
the metadata (``extra.teachers``) each teacher's model name and the text embeddings of its class
prompts, one (C, D) matrix per prompt template (``VP1``..., ``AP2``...). VAPLAN's pseudo-label
generation reads them (so a threshold trial costs no extraction); with ``as_inputs`` the same
embeddings also replace the ``visual``/``audio`` input features, so HAN, JoMoLD and VAPLAN can be
trained on CLIP/CLAP features (the paper's starred row).

Sources: :mod:`trainables.tasks.avvp.embeddings` (extraction with transformers' CLIP/CLAP) or
released per-video features: ``<dir>/<video_id>.npy`` arrays of shape (T, D), plus a ``.npz`` of
text embeddings with keys ``visual/<template>`` and ``audio/<template>``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from trainables.data.format import DataFormatError, read_all, read_meta, read_split, write_dataset
from trainables.tasks.avvp.classes import NUM_CLASSES, NUM_SEGMENTS

MODALITIES = ("visual", "audio")
COLUMNS = {"visual": "teacher_visual", "audio": "teacher_audio"}
# The input-feature column each teacher replaces with ``as_inputs``.
INPUT_COLUMNS = {"visual": "visual", "audio": "audio"}


def teachers_of(path: str | os.PathLike) -> dict[str, Any]:
    """The ``extra.teachers`` metadata of a data set (``{}`` when it has none)."""
    return dict(read_meta(path).get("extra", {}).get("teachers", {}))


def load_teacher(path: str | os.PathLike, split: str, modality: str, template: str
                 ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """One split's teacher segment embeddings and the class text embeddings of ``template``.

    Returns:
        ``(video_ids, seg_emb (N, T, D) float32, text_emb (C, D) float32)``.

    Raises:
        DataFormatError: The data set has no such teacher or prompt (the message lists what it has).
    """
    info = teachers_of(path).get(modality)
    if info is None:
        raise DataFormatError(f"{path}: no {modality} teacher embeddings (column {COLUMNS[modality]}); "
                              "add them with python -m orchestrator.data convert-teachers")
    texts = info["text"]
    if template not in texts:
        raise DataFormatError(f"{path}: {modality} teacher has no text embeddings for prompt "
                              f"{template!r}; has {sorted(texts)}")
    ids, arrays = read_split(path, split, [COLUMNS[modality]])
    return ids, arrays[COLUMNS[modality]].astype(np.float32), np.asarray(texts[template], np.float32)


def _read_npy(d: Path, vid: str, dim: int | None) -> np.ndarray:
    f = d / f"{vid}.npy"
    if not f.is_file():
        raise DataFormatError(f"{f}: missing (every video of the data set needs one)")
    try:
        a = np.load(f, allow_pickle=False)
    except ValueError as e:
        raise DataFormatError(f"{f}: not a numpy array file ({e})") from e
    if a.ndim != 2 or a.shape[0] != NUM_SEGMENTS or (dim is not None and a.shape[1] != dim):
        want = f"({NUM_SEGMENTS}, {dim if dim is not None else 'D'})"
        raise DataFormatError(f"{f}: shape {a.shape}, expected {want}")
    if not np.isfinite(a).all():
        raise DataFormatError(f"{f}: holds NaN or inf")
    return a.astype(np.float32)


def read_text_embeddings(path: str | os.PathLike, dims: Mapping[str, int]) -> dict[str, dict[str, list]]:
    """``{modality: {template: (C, D) list}}`` from a ``.npz`` with keys ``<modality>/<template>``.

    Raises:
        DataFormatError: Unknown keys, wrong shapes, or a modality without any template.
    """
    f = Path(path)
    try:
        z = np.load(f, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise DataFormatError(f"{f}: not a readable .npz ({e})") from e
    out: dict[str, dict[str, list]] = {m: {} for m in dims}
    for key in z.files:
        modality, _, template = key.partition("/")
        if modality not in MODALITIES or not template:
            raise DataFormatError(f"{f}: key {key!r}; expected '<modality>/<template>' with modality "
                                  f"in {list(MODALITIES)}")
        if modality not in dims:
            continue  # that teacher's segment embeddings are not being added
        a = z[key]
        if a.shape != (NUM_CLASSES, dims[modality]):
            raise DataFormatError(f"{f}: {key} has shape {a.shape}, expected ({NUM_CLASSES}, {dims[modality]})")
        out[modality][template] = a.astype(np.float32).tolist()
    for modality, texts in out.items():
        if not texts:
            raise DataFormatError(f"{f}: no text embeddings for the {modality} teacher")
    return out


def convert_teachers(data: str | os.PathLike, out: str | os.PathLike, *,
                     visual_dir: str | os.PathLike | None, audio_dir: str | os.PathLike | None,
                     text: str | os.PathLike, models: Mapping[str, str] | None = None,
                     as_inputs: bool = False) -> Path:
    """Writes a copy of an AVVP data set with teacher embedding columns added.

    Args:
        data: The source data set (converted LLP, or an LLP-sim preset).
        out: Output directory (written atomically; nothing is left on error).
        visual_dir: Folder of per-video CLIP segment embeddings ``<video_id>.npy`` (T, D), or None.
        audio_dir: Folder of per-video CLAP segment embeddings, or None.
        text: ``.npz`` of class text embeddings (``visual/VP1``, ``audio/AP2``, ...).
        models: Teacher model names to record (``{"visual": "ViT-B/32", ...}``).
        as_inputs: Also replace the ``visual``/``audio`` input features by these embeddings.

    Returns:
        The written data file.

    Raises:
        DataFormatError: A missing or malformed file (the message names it).
    """
    dirs = {m: Path(d) for m, d in (("visual", visual_dir), ("audio", audio_dir)) if d is not None}
    if not dirs:
        raise DataFormatError("convert-teachers: give a visual or an audio embeddings folder (or both)")
    for m, d in dirs.items():
        if not d.is_dir():
            raise DataFormatError(f"{d}: not a directory ({m} teacher embeddings)")
    meta = read_meta(data)
    ids, splits, merged = read_all(data)
    dims: dict[str, int] = {}
    for m, d in dirs.items():
        first = _read_npy(d, ids[0], None)
        dims[m] = first.shape[1]
        merged[COLUMNS[m]] = np.stack([first] + [_read_npy(d, v, dims[m]) for v in ids[1:]])
        if as_inputs:
            merged[INPUT_COLUMNS[m]] = merged[COLUMNS[m]]
    texts = read_text_embeddings(text, dims)
    teachers = {m: {"model": (models or {}).get(m, "unknown"), "text": texts[m]} for m in dims}
    extra = {**meta.get("extra", {}), "teachers": {**meta.get("extra", {}).get("teachers", {}), **teachers}}
    params = {**meta["params"], "teachers": {m: {"dir": str(dirs[m].resolve()), "model": teachers[m]["model"]}
                                             for m in dims}, "teachers_as_inputs": bool(as_inputs)}
    return write_dataset(out, video_ids=ids, split=splits, arrays=merged, kind=meta["kind"],
                         params=params, truth_splits=meta["truth_splits"], extra=extra)
