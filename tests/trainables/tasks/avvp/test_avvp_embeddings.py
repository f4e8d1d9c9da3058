"""Real-teacher extraction (CLIP/CLAP via transformers) with tiny randomly initialised models.

No weights can be downloaded here: the models are built from small configs, saved to a temporary
directory and loaded back through ``from_pretrained``, which is the path users take with a model
name or a local weights directory.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("transformers")

from trainables.methods.vaplan.pseudo import prompts, segment_pseudo_labels  # noqa: E402
from trainables.tasks.avvp import embeddings as E  # noqa: E402

CLASSES = ["Speech", "Dog", "Violin_fiddle", "Frying_(food)"]
WORDS = ["<pad>", "<unk>", "<bos>", "<eos>", "this", "photo", "contains", "the", "is", "a", "sound",
         "of", "speech", "dog", "violin", "fiddle", "frying", "food"]


def _tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    tk = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.post_processor = processors.TemplateProcessing(
        single="<bos> $A <eos>", special_tokens=[("<bos>", 2), ("<eos>", 3)])
    return PreTrainedTokenizerFast(tokenizer_object=tk, pad_token="<pad>", unk_token="<unk>",
                                   bos_token="<bos>", eos_token="<eos>")


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    from transformers import CLIPConfig, CLIPModel

    torch.manual_seed(0)
    text = dict(vocab_size=len(WORDS), hidden_size=16, intermediate_size=20, num_hidden_layers=1,
                num_attention_heads=2, max_position_embeddings=16, pad_token_id=0, bos_token_id=2, eos_token_id=3)
    vision = dict(image_size=32, patch_size=8, hidden_size=16, intermediate_size=20, num_hidden_layers=1,
                  num_attention_heads=2)
    d = tmp_path_factory.mktemp("clip")
    CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=12)).save_pretrained(d)
    _tokenizer().save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def clap_dir(tmp_path_factory):
    from transformers import ClapConfig, ClapFeatureExtractor, ClapModel

    torch.manual_seed(0)
    text = dict(vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                intermediate_size=20, max_position_embeddings=40, type_vocab_size=1, pad_token_id=0)
    # A 1-s input at 8 kHz with hop 80 gives 101 mel frames of 16 bins; spec_size 64 with 16 bins
    # (freq_ratio 4) takes up to 256 frames.
    audio = dict(spec_size=64, num_mel_bins=16, window_size=4, patch_size=4, patch_stride=(4, 4), depths=(1, 1),
                 num_attention_heads=(1, 2), patch_embeds_hidden_size=8, hidden_size=16, enable_fusion=False)
    d = tmp_path_factory.mktemp("clap")
    ClapModel(ClapConfig(text_config=text, audio_config=audio, projection_dim=12)).save_pretrained(d)
    _tokenizer().save_pretrained(d)
    ClapFeatureExtractor(feature_size=16, sampling_rate=8000, hop_length=80, max_length_s=1,
                         fft_window_size=256, frequency_max=3500).save_pretrained(d)
    return d


def test_middle_frame_indices():
    assert E.middle_frame_indices(250).tolist() == [12, 37, 62, 87, 112, 137, 162, 187, 212, 237]
    assert E.middle_frame_indices(10).tolist() == list(range(10))
    # Fewer frames than segments: (t + 1/2) * 3 / 10 = 0.15, 0.45, ..., 2.85.
    assert E.middle_frame_indices(3).tolist() == [0, 0, 0, 1, 1, 1, 1, 2, 2, 2]
    with pytest.raises(ValueError):
        E.middle_frame_indices(0)


def test_split_audio_equal_segments():
    wave = np.arange(1005, dtype=np.float32)
    seg = E.split_audio(wave)
    assert seg.shape == (10, 100)
    for t in range(10):  # segment t holds samples [100 t, 100 (t + 1)); the last 5 are dropped
        assert (seg[t] == wave[100 * t: 100 * (t + 1)]).all()
    stereo = np.stack([wave, -wave + 2])
    assert np.allclose(E.split_audio(stereo), 1.0)
    with pytest.raises(ValueError):
        E.split_audio(np.zeros(5))


def test_resample_keeps_frequency_and_length():
    sr, f = 16000, 440.0
    t = np.arange(sr) / sr
    x = np.sin(2 * np.pi * f * t).astype(np.float32)
    y = E.resample(x, sr, 48000)
    assert y.shape == (48000,)
    ref = np.sin(2 * np.pi * f * np.arange(48000) / 48000)
    assert np.abs(y - ref).max() < 1e-3
    assert E.resample(x, sr, sr) is x


def test_preprocess_images():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    got = E.preprocess_images(img, 32)
    mean = np.array(E.CLIP_MEAN).reshape(1, 3, 1, 1)
    std = np.array(E.CLIP_STD).reshape(1, 3, 1, 1)
    ref = (img.transpose(0, 3, 1, 2) / 255.0 - mean) / std  # no resize needed at the target size
    np.testing.assert_allclose(got.numpy(), ref, atol=1e-5)
    # Wide frame: the short side is resized to the target, then the centre is cropped.
    wide = np.zeros((1, 40, 120, 3), np.uint8)
    wide[:, :, 40:80] = 255
    out = E.preprocess_images(wide, 20)
    assert tuple(out.shape) == (1, 3, 20, 20)
    white = (1.0 - np.array(E.CLIP_MEAN)) / np.array(E.CLIP_STD)
    np.testing.assert_allclose(out[0, :, 10, 10].numpy(), white, atol=1e-4)
    # Float input is taken to be in [0, 1].
    np.testing.assert_allclose(E.preprocess_images(img / 255.0, 32).numpy(), got.numpy(), atol=1e-5)


def test_clip_visual_embeddings(clip_dir):
    teacher = E.ClipTeacher.from_pretrained(str(clip_dir))
    rng = np.random.default_rng(1)
    videos = [rng.integers(0, 256, (f, 36, 48, 3), dtype=np.uint8) for f in (25, 10, 40)]
    texts = prompts("VP1", CLASSES)
    out = E.visual_embeddings(teacher, videos, texts, template="VP1", batch_size=7)
    assert out.seg_emb.shape == (3, 10, 12) and out.text_emb.shape == (4, 12)
    assert out.seg_emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out.seg_emb, axis=-1), 1.0, atol=1e-5)
    assert out.meta == {"teacher": "clip", "model": str(clip_dir), "modality": "visual", "prompt_template": "VP1",
                        "prompts": texts, "num_segments": 10}
    # Reference: each middle frame alone through the model, each prompt alone.
    model = teacher.model
    with torch.no_grad():
        for i, v in enumerate(videos):
            for t in (0, 5, 9):
                fi = E.middle_frame_indices(v.shape[0])[t]
                px = E.preprocess_images(v[fi][None], 32)
                e = E._features(model.get_image_features(pixel_values=px))[0]
                np.testing.assert_allclose(out.seg_emb[i, t], (e / e.norm()).numpy(), atol=1e-5)
        for c, text in enumerate(texts):
            enc = teacher.tokenizer([text], return_tensors="pt")
            e = E._features(model.get_text_features(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]))[0]
            np.testing.assert_allclose(out.text_emb[c], (e / e.norm()).numpy(), atol=1e-5)
    # Batch size does not change the result; mixed resolutions in one batch work.
    again = E.visual_embeddings(teacher, videos, texts, batch_size=64)
    np.testing.assert_allclose(again.seg_emb, out.seg_emb, atol=1e-5)
    mixed = E.visual_embeddings(teacher, [videos[0], rng.integers(0, 256, (10, 20, 30, 3), dtype=np.uint8)], texts)
    assert mixed.seg_emb.shape == (2, 10, 12)
    # The output feeds PLG directly.
    y = segment_pseudo_labels(out.seg_emb, out.text_emb, np.ones((3, 4)), 0.25)
    assert tuple(y.shape) == (3, 10, 4)


def test_clap_audio_embeddings(clap_dir):
    teacher = E.ClapTeacher.from_pretrained(str(clap_dir))
    assert teacher.sampling_rate == 8000
    rng = np.random.default_rng(2)
    waves = [(rng.standard_normal(80000).astype(np.float32) * 0.1, 8000),
             (rng.standard_normal((2, 40000)).astype(np.float32) * 0.1, 4000)]  # stereo at 4 kHz
    texts = prompts("AP2", CLASSES)
    out = E.audio_embeddings(teacher, waves, texts, template="AP2", batch_size=6)
    assert out.seg_emb.shape == (2, 10, 12) and out.text_emb.shape == (4, 12)
    np.testing.assert_allclose(np.linalg.norm(out.seg_emb, axis=-1), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(out.text_emb, axis=-1), 1.0, atol=1e-5)
    assert out.meta["teacher"] == "clap" and out.meta["prompt_template"] == "AP2"
    # Reference: each 1-s segment (resampled to 8 kHz, mono) alone through the model.
    segs = [E.split_audio(waves[0][0]), E.split_audio(E.resample(waves[1][0].mean(0), 4000, 8000))]
    assert segs[1].shape == (10, 8000)
    for i, seg in enumerate(segs):
        for t in (0, 4, 9):
            e = teacher.embed_audio([seg[t]])[0]
            np.testing.assert_allclose(out.seg_emb[i, t], e.numpy(), atol=1e-5)
    again = E.audio_embeddings(teacher, waves, texts, batch_size=64)
    np.testing.assert_allclose(again.seg_emb, out.seg_emb, atol=1e-5)
    single = teacher.embed_texts([texts[2]])[0]
    np.testing.assert_allclose(out.text_emb[2], single.numpy(), atol=1e-5)


def test_no_videos_is_an_error(clip_dir):
    teacher = E.ClipTeacher.from_pretrained(str(clip_dir))
    with pytest.raises(ValueError, match="no videos"):
        E.visual_embeddings(teacher, [], ["a photo"])


def _inputs(tmp_path):
    """Two videos' frames (an image folder and a .npy) and audio (int16 and float .wav)."""
    from PIL import Image
    from scipy.io import wavfile

    rng = np.random.default_rng(5)
    frames = {"vid_a": rng.integers(0, 256, (20, 24, 32, 3), dtype=np.uint8),
              "vid_b": rng.integers(0, 256, (12, 40, 40, 3), dtype=np.uint8)}
    fdir, adir = tmp_path / "frames", tmp_path / "audio"
    (fdir / "vid_a").mkdir(parents=True)
    for i, fr in enumerate(frames["vid_a"]):
        Image.fromarray(fr).save(fdir / "vid_a" / f"{i:06d}.png")
    np.save(fdir / "vid_b.npy", frames["vid_b"])
    adir.mkdir()
    waves = {"vid_a": (rng.standard_normal(80000) * 3000).astype(np.int16),
             "vid_b": (rng.standard_normal(80000) * 0.1).astype(np.float32)}
    for vid, w in waves.items():
        wavfile.write(adir / f"{vid}.wav", 8000, w)
    return fdir, adir, frames, waves


def test_extract_cli_writes_what_convert_teachers_reads(clip_dir, clap_dir, tmp_path, capsys):
    from trainables.methods.vaplan import extract as X
    from trainables.methods.vaplan.pseudo import AUDIO_PROMPTS, VISUAL_PROMPTS
    from trainables.tasks.avvp.classes import LLP_CLASSES
    from trainables.tasks.avvp.teacher_data import _read_npy, read_text_embeddings

    fdir, adir, frames, waves = _inputs(tmp_path)
    out = tmp_path / "emb"
    rc = X.main(["--frames", str(fdir), "--audio", str(adir), "--clip", str(clip_dir), "--clap", str(clap_dir),
                 "--batch-size", "7", "--out", str(out)])
    assert rc == 0 and "2 videos" in capsys.readouterr().out
    # The same numbers as the library functions on the decoded inputs (PNG is lossless).
    clip, clap = E.ClipTeacher.from_pretrained(str(clip_dir)), E.ClapTeacher.from_pretrained(str(clap_dir))
    want_v = E.visual_embeddings(clip, [frames["vid_a"], frames["vid_b"]], prompts("VP1", LLP_CLASSES))
    want_a = E.audio_embeddings(clap, [(waves["vid_a"] / 32767.0, 8000), (waves["vid_b"], 8000)],
                                prompts("AP2", LLP_CLASSES))
    for i, vid in enumerate(("vid_a", "vid_b")):
        np.testing.assert_allclose(_read_npy(out / "visual", vid, 12), want_v.seg_emb[i], atol=1e-5)
        np.testing.assert_allclose(_read_npy(out / "audio", vid, 12), want_a.seg_emb[i], atol=1e-4)
    texts = read_text_embeddings(out / "text.npz", {"visual": 12, "audio": 12})
    assert sorted(texts["visual"]) == sorted(VISUAL_PROMPTS) and sorted(texts["audio"]) == sorted(AUDIO_PROMPTS)
    np.testing.assert_allclose(np.asarray(texts["visual"]["VP1"]), want_v.text_emb, atol=1e-5)
    assert f"--visual-model {clip_dir}" in X.next_command(out)


def test_extract_cli_bad_input_names_the_file_and_writes_nothing(clip_dir, tmp_path, capsys):
    from trainables.methods.vaplan import extract as X

    fdir, _, _, _ = _inputs(tmp_path)
    (fdir / "vid_a" / "000003.png").write_bytes(b"not a png")
    out = tmp_path / "emb"
    assert X.main(["--frames", str(fdir), "--clip", str(clip_dir), "--out", str(out)]) == 2
    assert "000003.png: not a readable image" in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.glob(".emb.tmp-*"))
    assert X.main(["--frames", str(tmp_path / "nope"), "--out", str(out)]) == 2
    assert "nope: --frames is not a directory" in capsys.readouterr().err
    assert X.main(["--out", str(out)]) == 2 and "give --frames and/or --audio" in capsys.readouterr().err


def test_read_wav_scales_signed_and_unsigned_pcm(tmp_path):
    from scipy.io import wavfile

    from trainables.methods.vaplan.extract import read_wav

    wavfile.write(tmp_path / "u8.wav", 8000, np.array([0, 128, 255], np.uint8))  # 8-bit PCM: unsigned
    wavfile.write(tmp_path / "i16.wav", 8000, np.array([-32767, 0, 32767], np.int16))
    wavfile.write(tmp_path / "st.wav", 4000, np.zeros((5, 2), np.float32))  # (S, channels) on disk
    u8, sr = read_wav(tmp_path / "u8.wav")
    assert sr == 8000 and u8.tolist() == [-1.0, 0.0, 127 / 128]
    assert read_wav(tmp_path / "i16.wav")[0].tolist() == [-1.0, 0.0, 1.0]
    st, sr = read_wav(tmp_path / "st.wav")
    assert st.shape == (2, 5) and sr == 4000
