"""``python -m trainables.methods.vaplan.extract``: VAPLAN's CLIP/CLAP teacher embeddings from
decoded frames and audio, written in the layout ``python -m orchestrator.data convert-teachers`` reads.

Inputs, one entry per video (the id is the file or folder name without extension):

* ``--frames DIR``: ``<video_id>/`` folders of image files (sorted by name: LLP's frame dumps) or
  ``<video_id>.npy`` arrays ``(F, H, W, 3)``; only the middle frame of each of the T = 10 segments
  is embedded (:func:`trainables.tasks.avvp.embeddings.visual_embeddings`).
* ``--audio DIR``: ``<video_id>.wav`` (PCM or float; resampled to CLAP's rate), cut into T equal
  segments (:func:`trainables.tasks.avvp.embeddings.audio_embeddings`).
* ``--clip`` / ``--clap``: a Hugging Face model name or a local weights directory (default: the
  paper's ViT-B/32 and HTSAT-RoBERTa checkpoints).

Output directory ``OUT``: ``visual/<video_id>.npy`` and ``audio/<video_id>.npy`` (T, D) float32,
``text.npz`` with the class-prompt embeddings of *every* template (``visual/VP1`` ... ``visual/VP4``,
``audio/AP1``, ``audio/AP2``; so choosing a prompt is a trial setting, not a re-extraction) and
``models.json``. It is written under a temporary name and renamed at the end, so a failed run leaves
nothing. Then::

    python -m orchestrator.data convert-teachers llp=PATH --visual OUT/visual --audio OUT/audio \\
        --text OUT/text.npz --visual-model NAME --audio-model NAME --out DATA_WITH_TEACHERS
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from trainables.data.format import atomic_dir
from trainables.methods.vaplan.pseudo import AUDIO_PROMPTS, VISUAL_PROMPTS, prompts
from trainables.tasks.avvp.classes import LLP_CLASSES
from trainables.tasks.avvp.embeddings import DEFAULT_CLAP, DEFAULT_CLIP

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


def frame_sources(frames_dir: str | Path) -> dict[str, Path]:
    """``{video_id: folder or .npy}`` under ``frames_dir``, sorted by id.

    Raises:
        ValueError: The folder is missing or holds no video.
    """
    d = Path(frames_dir)
    if not d.is_dir():
        raise ValueError(f"{d}: --frames is not a directory")
    out = {p.stem if p.is_file() else p.name: p for p in sorted(d.iterdir())
           if p.is_dir() or p.suffix == ".npy"}
    if not out:
        raise ValueError(f"{d}: no <video_id>/ frame folders or <video_id>.npy frame arrays")
    return out


def read_frames(src: Path) -> np.ndarray:
    """A video's decoded frames ``(F, H, W, 3)`` uint8 from a folder of images or a ``.npy``.

    Raises:
        ValueError: Naming the file that is missing, unreadable or of the wrong shape.
    """
    if src.suffix == ".npy":
        try:
            x = np.load(src, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise ValueError(f"{src}: not a readable .npy ({e})") from None
    else:
        from PIL import Image

        files = sorted(p for p in src.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ValueError(f"{src}: no image files ({', '.join(IMAGE_SUFFIXES)})")
        frames = []
        for f in files:
            try:
                with Image.open(f) as im:
                    frames.append(np.asarray(im.convert("RGB")))
            except OSError as e:
                raise ValueError(f"{f}: not a readable image ({e})") from None
        if len({fr.shape for fr in frames}) > 1:
            raise ValueError(f"{src}: frames of different sizes")
        x = np.stack(frames)
    if x.ndim != 4 or x.shape[-1] != 3 or x.shape[0] == 0:
        raise ValueError(f"{src}: frames must be (F, H, W, 3) with F >= 1, got {x.shape}")
    return x


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """``(wave (S,) or (channels, S) float32 in [-1, 1], sampling rate)`` of a ``.wav`` file.

    Raises:
        ValueError: Naming the file that is unreadable or empty.
    """
    from scipy.io import wavfile

    try:
        sr, x = wavfile.read(path)
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: not a readable .wav ({e})") from None
    if x.size == 0:
        raise ValueError(f"{path}: no samples")
    if np.issubdtype(x.dtype, np.unsignedinteger):  # 8-bit PCM is unsigned, centred on 128
        mid = (float(np.iinfo(x.dtype).max) + 1.0) / 2.0
        x = (x.astype(np.float32) - mid) / mid
    elif np.issubdtype(x.dtype, np.integer):
        x = x.astype(np.float32) / float(np.iinfo(x.dtype).max)
    x = np.asarray(x, np.float32)
    return (x.T if x.ndim == 2 else x), int(sr)


def audio_sources(audio_dir: str | Path) -> dict[str, Path]:
    """``{video_id: .wav}`` under ``audio_dir``, sorted by id (raises ValueError if none)."""
    d = Path(audio_dir)
    if not d.is_dir():
        raise ValueError(f"{d}: --audio is not a directory")
    out = {p.stem: p for p in sorted(d.glob("*.wav"))}
    if not out:
        raise ValueError(f"{d}: no <video_id>.wav files")
    return out


def _texts(teacher: Any, templates: Sequence[str], modality: str, classes: Sequence[str]
           ) -> dict[str, np.ndarray]:
    return {f"{modality}/{t}": teacher.embed_texts(prompts(t, classes)).numpy().astype(np.float32)
            for t in templates}


def _write(d: Path, ids: list[str], emb: np.ndarray) -> None:
    d.mkdir(parents=True)
    for vid, e in zip(ids, emb):
        np.save(d / f"{vid}.npy", e.astype(np.float32))


def extract(out: str | Path, *, frames_dir: str | Path | None = None, audio_dir: str | Path | None = None,
            clip: str = DEFAULT_CLIP, clap: str = DEFAULT_CLAP, device: str = "cpu", batch_size: int = 64,
            classes: Sequence[str] = LLP_CLASSES) -> Path:
    """Embeds every video's segments with CLIP (frames) and/or CLAP (audio); see the module.

    Returns:
        ``out``.

    Raises:
        ValueError: Bad input (naming the file or folder); ``out`` exists and is not empty.
    """
    from trainables.tasks.avvp import embeddings as E

    if frames_dir is None and audio_dir is None:
        raise ValueError("nothing to extract: give --frames and/or --audio")
    out = Path(out)
    # Check every input before loading a model or writing anything.
    frames = frame_sources(frames_dir) if frames_dir is not None else {}
    audio = audio_sources(audio_dir) if audio_dir is not None else {}
    # Per modality: sources, teacher class, model, embedding function, reader, prompt templates.
    jobs = [("visual", frames, E.ClipTeacher, clip, E.visual_embeddings, read_frames, VISUAL_PROMPTS),
            ("audio", audio, E.ClapTeacher, clap, E.audio_embeddings, read_wav, AUDIO_PROMPTS)]
    with atomic_dir(out) as tmp:
        texts: dict[str, np.ndarray] = {}
        models: dict[str, str] = {}
        for modality, sources, cls, name, embed, read, templates in jobs:
            if not sources:
                continue
            teacher = cls.from_pretrained(name, device=device)
            first, *rest = templates  # the embedding call embeds one template's prompts; the rest here
            emb = embed(teacher, (read(p) for p in sources.values()), prompts(first, classes),
                        template=first, batch_size=batch_size)
            _write(tmp / modality, list(sources), emb.seg_emb)
            texts[f"{modality}/{first}"] = emb.text_emb
            texts.update(_texts(teacher, rest, modality, classes))
            models[modality] = teacher.name
        np.savez(tmp / "text.npz", **texts)
        info = {"models": models, "classes": list(classes), "videos": {"visual": len(frames), "audio": len(audio)}}
        (tmp / "models.json").write_text(json.dumps(info, indent=1))
    return out


def next_command(out: Path) -> str:
    """The ``convert-teachers`` command that adds what :func:`extract` wrote to a data set."""
    models = json.loads((out / "models.json").read_text())["models"]
    parts = ["python -m orchestrator.data convert-teachers DATASET"]
    for m in ("visual", "audio"):
        if m in models:
            parts.append(f"--{m} {out / m} --{m}-model {models[m]}")
    return " ".join([*parts, f"--text {out / 'text.npz'} --out DIR"])


def main(argv: list[str] | None = None) -> int:
    """CLI; exit 0 on success, 2 on bad input (nothing written)."""
    p = argparse.ArgumentParser(prog="python -m trainables.methods.vaplan.extract",
                                description=__doc__.split("\n\n")[0].replace("\n", " "))
    p.add_argument("--frames", help="folder of <video_id>/ image folders or <video_id>.npy (F, H, W, 3)")
    p.add_argument("--audio", help="folder of <video_id>.wav")
    p.add_argument("--clip", default=DEFAULT_CLIP, help="CLIP model name or weights directory (default: %(default)s)")
    p.add_argument("--clap", default=DEFAULT_CLAP, help="CLAP model name or weights directory (default: %(default)s)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=64, help="segments per forward pass")
    p.add_argument("--out", required=True, help="output directory (must not exist or be empty)")
    args = p.parse_args(argv)
    if args.batch_size < 1:
        p.error("--batch-size must be at least 1")
    try:
        out = extract(args.out, frames_dir=args.frames, audio_dir=args.audio, clip=args.clip, clap=args.clap,
                      device=args.device, batch_size=args.batch_size)
    except ImportError as e:
        print(f"error: {e} (pip install 'avtune[teachers]')", file=sys.stderr)
        return 2
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    n = len({f.stem for f in out.glob("*/*.npy")})
    print(f"wrote {out}: {n} videos; next: {next_command(out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
