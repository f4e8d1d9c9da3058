"""Real teacher embeddings for VAPLAN: CLIP for the visual stream, CLAP for the audio stream.

VAPLAN (Zhou et al., "Advancing Weakly-Supervised Audio-Visual Video Parsing via Segment-wise
Pseudo Labeling") embeds each of a video's T = 10 one-second segments with a pretrained teacher
and compares it with one text prompt per class:

* visual: the **middle frame** of each segment through CLIP's image encoder (paper: ViT-B/32);
* audio: the waveform cut into **T equal segments**, each through CLAP's audio encoder (paper:
  HTSAT-RoBERTa);
* text: the class prompts through the same model's text encoder.

Every embedding is L2-normalised. Models come from Hugging Face ``transformers`` (an optional
dependency, imported only inside functions): pass a model name or a local directory to
``ClipTeacher.from_pretrained`` / ``ClapTeacher.from_pretrained``, or wrap already built objects.
Images are preprocessed here with plain torch (resize of the short side, centre crop, CLIP's
normalisation), so neither torchvision nor an image processor is needed; audio goes through the
model's ``ClapFeatureExtractor`` (numpy only). Video and audio decoding is the caller's: pass
decoded frames ``(F, H, W, 3)`` and waveforms.

The output is :class:`~trainables.tasks.avvp.teachers.TeacherEmbeddings`, the same type as the
LLP-sim teachers: ``seg_emb`` ``(N, T, D)`` and ``text_emb`` ``(C, D)`` float32 numpy arrays plus
``meta`` (``teacher``, ``model``, ``modality``, ``prompt_template``, ``prompts``,
``num_segments``) for the data layer to cache them keyed by model and prompt.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from trainables.tasks.avvp.teachers import TeacherEmbeddings

NUM_SEGMENTS = 10
DEFAULT_CLIP = "openai/clip-vit-base-patch32"  # the paper's ViT-B/32
DEFAULT_CLAP = "laion/clap-htsat-unfused"      # HTSAT audio encoder, RoBERTa text encoder
# The image normalisation every OpenAI CLIP checkpoint was trained with (per RGB channel).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _features(out: Any) -> torch.Tensor:
    # transformers 4.x returns the projected features as a tensor, 5.x as ``pooler_output``.
    return out if isinstance(out, torch.Tensor) else out.pooler_output


def middle_frame_indices(num_frames: int, num_segments: int = NUM_SEGMENTS) -> np.ndarray:
    """Index of the middle frame of each of ``num_segments`` equal segments of a clip.

    A clip of F frames spans F frame periods, so segment t covers ``[t F / T, (t + 1) F / T)`` and
    its middle is ``(t + 1/2) F / T`` (a 10-s clip at any frame rate: 0.5 s, 1.5 s, ...).
    """
    if num_frames < 1:
        raise ValueError("a clip needs at least one frame")
    t = np.arange(num_segments)
    return np.minimum(((t + 0.5) * num_frames / num_segments).astype(np.int64), num_frames - 1)


def split_audio(wave: Any, num_segments: int = NUM_SEGMENTS) -> np.ndarray:
    """Cuts a waveform into ``num_segments`` equal segments ``(T, S // T)`` float32.

    Multi-channel input ``(channels, S)`` is averaged to mono first; the last ``S mod T`` samples
    (less than one sample per segment and millisecond) are dropped.
    """
    x = np.asarray(wave, dtype=np.float32)
    if x.ndim == 2:
        x = x.mean(0)
    if x.ndim != 1 or x.shape[0] < num_segments:
        raise ValueError(f"expected a waveform (S,) or (channels, S) with S >= {num_segments}, got {x.shape}")
    n = x.shape[0] // num_segments
    return x[: n * num_segments].reshape(num_segments, n)


def resample(x: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Band-limited resampling along the last axis by the FFT (no audio library needed)."""
    if orig_sr == target_sr:
        return x
    n = x.shape[-1]
    m = max(1, round(n * target_sr / orig_sr))
    spec = np.fft.rfft(x.astype(np.float64), axis=-1)
    keep = min(spec.shape[-1], m // 2 + 1)
    out = np.zeros((*spec.shape[:-1], m // 2 + 1), complex)
    out[..., :keep] = spec[..., :keep]
    return (np.fft.irfft(out, n=m, axis=-1) * (m / n)).astype(np.float32)


def preprocess_images(
    images: Any, size: int, mean: Sequence[float] = CLIP_MEAN, std: Sequence[float] = CLIP_STD,
) -> torch.Tensor:
    """CLIP's image preprocessing in torch: ``(B, H, W, 3)`` RGB -> ``(B, 3, size, size)``.

    Bicubic resize (antialiased) of the short side to ``size``, centre crop, scaling to [0, 1]
    (uint8 input is divided by 255; float input is taken to be in [0, 1] already), normalisation.
    """
    arr = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    if arr.ndim != 4 or arr.shape[-1] != 3:
        raise ValueError(f"expected images (B, H, W, 3), got {arr.shape}")
    x = torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).float()
    if arr.dtype.kind in "ui":
        x = x / 255.0
    h, w = x.shape[-2:]
    scale = size / min(h, w)
    nh, nw = max(size, round(h * scale)), max(size, round(w * scale))
    x = F.interpolate(x, size=(nh, nw), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
    top, left = (nh - size) // 2, (nw - size) // 2
    x = x[..., top : top + size, left : left + size]
    m = torch.tensor(mean).view(1, 3, 1, 1)
    s = torch.tensor(std).view(1, 3, 1, 1)
    return (x - m) / s


@dataclass
class ClipTeacher:
    """A CLIP model and tokenizer (``transformers``), embedding images and prompts."""

    model: Any
    tokenizer: Any
    name: str
    device: str = "cpu"
    mean: tuple[float, ...] = CLIP_MEAN
    std: tuple[float, ...] = CLIP_STD

    @classmethod
    def from_pretrained(cls, name_or_path: str = DEFAULT_CLIP, *, device: str = "cpu") -> "ClipTeacher":
        """Loads ``CLIPModel`` and its tokenizer from a hub name or a local directory."""
        from transformers import AutoTokenizer, CLIPModel

        model = CLIPModel.from_pretrained(name_or_path).to(device).eval()
        return cls(model, AutoTokenizer.from_pretrained(name_or_path), str(name_or_path), device)

    @property
    def image_size(self) -> int:
        return int(self.model.config.vision_config.image_size)

    @torch.no_grad()
    def embed_images(self, images: Any) -> torch.Tensor:
        """``(B, H, W, 3)`` RGB frames -> ``(B, D)`` unit-norm image embeddings (CPU float32)."""
        if isinstance(images, (list, tuple)) and len({np.shape(im) for im in images}) > 1:
            # Frames of different sizes (videos of different resolutions in one batch).
            pixels = torch.cat([preprocess_images(np.asarray(im)[None], self.image_size, self.mean, self.std)
                                for im in images])
        else:
            pixels = preprocess_images(np.asarray(images), self.image_size, self.mean, self.std)
        pixels = pixels.to(self.device)
        return F.normalize(_features(self.model.get_image_features(pixel_values=pixels)).float(), dim=-1).cpu()

    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """Prompts -> ``(C, D)`` unit-norm text embeddings (CPU float32)."""
        enc = self.tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt")
        enc = {k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
        return F.normalize(_features(self.model.get_text_features(**enc)).float(), dim=-1).cpu()


@dataclass
class ClapTeacher:
    """A CLAP model, tokenizer and ``ClapFeatureExtractor`` (``transformers``)."""

    model: Any
    tokenizer: Any
    feature_extractor: Any
    name: str
    device: str = "cpu"

    @classmethod
    def from_pretrained(cls, name_or_path: str = DEFAULT_CLAP, *, device: str = "cpu") -> "ClapTeacher":
        """Loads ``ClapModel``, its tokenizer and feature extractor from a hub name or directory."""
        from transformers import AutoTokenizer, ClapFeatureExtractor, ClapModel

        model = ClapModel.from_pretrained(name_or_path).to(device).eval()
        return cls(model, AutoTokenizer.from_pretrained(name_or_path),
                   ClapFeatureExtractor.from_pretrained(name_or_path), str(name_or_path), device)

    @property
    def sampling_rate(self) -> int:
        return int(self.feature_extractor.sampling_rate)

    @torch.no_grad()
    def embed_audio(self, segments: Sequence[np.ndarray]) -> torch.Tensor:
        """Mono waveforms at :attr:`sampling_rate` -> ``(B, D)`` unit-norm audio embeddings."""
        # A 1-s segment is shorter than CLAP's 10-s input, so it is padded (the extractor's
        # "repeatpad") and never truncated; "fusion" only decides the channel layout, which must
        # match the model's enable_fusion.
        fusion = bool(getattr(self.model.config.audio_config, "enable_fusion", False))
        feats = self.feature_extractor([np.asarray(s, np.float32) for s in segments],
                                       sampling_rate=self.sampling_rate, return_tensors="pt",
                                       truncation="fusion" if fusion else "rand_trunc")
        out = self.model.get_audio_features(input_features=feats["input_features"].to(self.device),
                                            is_longer=feats["is_longer"].to(self.device))
        return F.normalize(_features(out).float(), dim=-1).cpu()

    @torch.no_grad()
    def embed_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """Prompts -> ``(C, D)`` unit-norm text embeddings (CPU float32)."""
        enc = self.tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt")
        enc = {k: v.to(self.device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
        return F.normalize(_features(self.model.get_text_features(**enc)).float(), dim=-1).cpu()


@dataclass
class _Batcher:
    """Collects per-video segment inputs, embeds them ``batch_size`` at a time, in order."""

    embed: Any
    batch_size: int
    pending: list[Any] = field(default_factory=list)
    done: list[torch.Tensor] = field(default_factory=list)

    def add(self, items: Sequence[Any]) -> None:
        self.pending.extend(items)
        while len(self.pending) >= self.batch_size:
            self._flush(self.batch_size)

    def _flush(self, n: int) -> None:
        chunk, self.pending = self.pending[:n], self.pending[n:]
        self.done.append(self.embed(chunk))

    def result(self) -> torch.Tensor:
        if self.pending:
            self._flush(len(self.pending))
        if not self.done:
            raise ValueError("no videos to embed")
        return torch.cat(self.done)


def _output(seg: torch.Tensor, n_seg: int, text: torch.Tensor, teacher: str, model: str, modality: str,
            prompts: Sequence[str], template: str | None) -> TeacherEmbeddings:
    meta = {"teacher": teacher, "model": model, "modality": modality, "prompt_template": template,
            "prompts": list(prompts), "num_segments": n_seg}
    emb = seg.reshape(-1, n_seg, seg.shape[-1]).numpy().astype(np.float32)
    return TeacherEmbeddings(emb, text.numpy().astype(np.float32), meta)


def visual_embeddings(
    teacher: ClipTeacher, videos: Iterable[Any], prompts: Sequence[str], *, template: str | None = None,
    num_segments: int = NUM_SEGMENTS, batch_size: int = 64,
) -> TeacherEmbeddings:
    """CLIP embeddings of each segment's middle frame, and of the class prompts.

    Args:
        teacher: A :class:`ClipTeacher`.
        videos: Per video, decoded RGB frames ``(F, H, W, 3)`` (uint8, or float in [0, 1]) covering
            the clip (LLP: 10 s); only the ``num_segments`` middle frames are embedded.
        prompts: One prompt per class, in class order (e.g. ``vaplan.pseudo.prompts("VP1", ...)``).
        template: The prompts' template name, recorded in ``meta`` (cache key).
        num_segments: T.
        batch_size: Frames per forward pass.

    Returns:
        ``seg_emb`` ``(N, T, D)``, ``text_emb`` ``(C, D)`` (unit norm) and ``meta``.
    """
    b = _Batcher(teacher.embed_images, batch_size)
    for frames in videos:
        frames = np.asarray(frames)
        b.add(list(frames[middle_frame_indices(frames.shape[0], num_segments)]))
    return _output(b.result(), num_segments, teacher.embed_texts(prompts), "clip", teacher.name,
                   "visual", prompts, template)


def audio_embeddings(
    teacher: ClapTeacher, waveforms: Iterable[tuple[Any, int]], prompts: Sequence[str], *,
    template: str | None = None, num_segments: int = NUM_SEGMENTS, batch_size: int = 64,
) -> TeacherEmbeddings:
    """CLAP embeddings of T equal audio segments per video, and of the class prompts.

    Args:
        teacher: A :class:`ClapTeacher`.
        waveforms: Per video ``(wave, sampling_rate)``; ``wave`` is ``(S,)`` or ``(channels, S)``
            and is resampled to the teacher's rate (48 kHz for LAION CLAP) when it differs.
        prompts: One prompt per class, in class order (e.g. ``vaplan.pseudo.prompts("AP2", ...)``).
        template: The prompts' template name, recorded in ``meta``.
        num_segments: T.
        batch_size: Segments per forward pass.

    Returns:
        ``seg_emb`` ``(N, T, D)``, ``text_emb`` ``(C, D)`` (unit norm) and ``meta``.
    """
    b = _Batcher(teacher.embed_audio, batch_size)
    for wave, sr in waveforms:
        x = np.asarray(wave, np.float32)
        x = x.mean(0) if x.ndim == 2 else x
        b.add(list(split_audio(resample(x, int(sr), teacher.sampling_rate), num_segments)))
    return _output(b.result(), num_segments, teacher.embed_texts(prompts), "clap", teacher.name,
                   "audio", prompts, template)
