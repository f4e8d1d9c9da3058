"""Loading an AVVP (LLP or LLP-sim) split as device-resident tensors."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace

import torch

from trainables.data.format import DataFormatError, read_meta, read_split

FEATURE_COLUMNS = ("audio", "visual", "motion")
TRUTH_COLUMNS = ("gt_audio", "gt_visual")


@dataclass
class AVVPSplit:
    """One split of an AVVP data set, as tensors.

    Attributes:
        video_ids: CSV filenames, one per video.
        audio: (N, T, Da) VGGish-like features.
        visual: (N, T, Dv) frame-averaged ResNet features, or (N, T, F, Dv) per frame.
        motion: (N, T, Dm) R(2+1)D-like features.
        labels: (N, C) weak video-level labels, float32 0/1.
        gt_audio: (N, T, C) dense audio truth (uint8), or None where the split has none.
        gt_visual: (N, T, C) dense visual truth (uint8), or None.
    """

    video_ids: list[str]
    audio: torch.Tensor
    visual: torch.Tensor
    motion: torch.Tensor
    labels: torch.Tensor
    gt_audio: torch.Tensor | None = None
    gt_visual: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.video_ids)

    @property
    def has_truth(self) -> bool:
        return self.gt_audio is not None

    def modality_truth(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The video-level truth of each modality, ``(true_a, true_v)`` bool (N, C): a class is
        present in the audio (visual) track when any of its segments is (the one definition, used
        for oracle labels, true noise ratios and label-quality figures).

        Raises:
            ValueError: The split has no dense truth (real LLP train).
        """
        if not self.has_truth:
            raise ValueError("this split has no dense truth (real LLP train); modality truth needs "
                             "LLP-sim or an annotated split")
        return (self.gt_audio != 0).any(dim=1), (self.gt_visual != 0).any(dim=1)

    def to(self, device: str | torch.device, feature_dtype: torch.dtype | None = None) -> "AVVPSplit":
        """Moves every tensor to ``device`` (features optionally cast to ``feature_dtype``)."""
        kw = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, torch.Tensor):
                dtype = feature_dtype if (f.name in FEATURE_COLUMNS and feature_dtype) else None
                kw[f.name] = v.to(device=device, dtype=dtype, non_blocking=True)
        return replace(self, **kw)

    def subset(self, idx: torch.Tensor) -> "AVVPSplit":
        """Rows ``idx`` (a 1-D index tensor on the same device)."""
        kw = {f.name: getattr(self, f.name)[idx] for f in fields(self)
              if isinstance(getattr(self, f.name), torch.Tensor)}
        ids = [self.video_ids[i] for i in idx.tolist()]
        return replace(self, video_ids=ids, **kw)


def load_avvp(path: str | os.PathLike, split: str) -> AVVPSplit:
    """Loads one split of an AVVP data set written by avtune (CPU tensors, stored dtypes).

    Truth tensors are returned only for splits listed in the file's ``truth_splits``.
    """
    meta = read_meta(path)
    if meta["kind"] not in ("llp", "llp-sim"):
        raise DataFormatError(f"{path}: kind {meta['kind']!r} is not an AVVP data set")
    with_truth = split in meta["truth_splits"]
    cols = [*FEATURE_COLUMNS, "labels", *(TRUTH_COLUMNS if with_truth else ())]
    ids, arr = read_split(path, split, cols)
    t = {k: torch.from_numpy(v) for k, v in arr.items()}
    return AVVPSplit(
        video_ids=ids,
        audio=t["audio"],
        visual=t["visual"],
        motion=t["motion"],
        labels=t["labels"].float(),
        gt_audio=t.get("gt_audio"),
        gt_visual=t.get("gt_visual"),
    )
