"""Data specs: preset caching (reuse, locking, atomicity), path specs, CPU presets."""

import threading
import time

import numpy as np
import pytest

from trainables.data import format as fmt
from trainables.data import registry
from trainables.tasks.avvp.llp_sim import make_llp_sim


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AVTUNE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _tiny_builder(calls, delay=0.0):
    def build(name, out, seed):
        calls.append((name, seed))
        time.sleep(delay)
        make_llp_sim(out, n_train=8, n_val=4, n_test=4, seed=seed)
    return build


def test_resolve_real_tiny_preset_and_reuse(cache):
    p1 = registry.resolve_data("llp-sim-tiny")
    assert p1.parent == cache and p1.name.startswith("llp-sim-tiny-")
    meta = fmt.read_meta(p1)
    assert meta["kind"] == "llp-sim" and meta["splits"]["train"] == 256
    stamp = (p1 / fmt.DATA_FILE).stat().st_mtime_ns
    assert "cached at" in registry.describe_data("llp-sim-tiny")
    p2 = registry.resolve_data(" llp-sim-tiny ")
    assert p2 == p1 and (p2 / fmt.DATA_FILE).stat().st_mtime_ns == stamp
    p3 = registry.resolve_data("llp-sim-tiny", seed=1)
    assert p3 != p1
    assert not list(cache.glob(".tmp-*"))


def test_builder_called_once_even_when_racing(cache):
    calls = []
    build = _tiny_builder(calls, delay=0.3)
    results = []
    threads = [threading.Thread(target=lambda: results.append(
        registry.cached_preset("llp-sim-small", builder=build))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [("llp-sim-small", 0)]
    assert len(set(results)) == 1 and fmt.read_meta(results[0])["splits"]["train"] == 8
    registry.cached_preset("llp-sim-small", builder=build)
    assert len(calls) == 1


def test_failed_build_leaves_nothing(cache):
    def broken(name, out, seed):
        (out / "half.bin").write_bytes(b"x")
        raise RuntimeError("disk full")
    with pytest.raises(RuntimeError, match="disk full"):
        registry.cached_preset("llp-sim-small", builder=broken)
    assert [p.name for p in cache.iterdir() if not p.name.endswith(".lock")] == []
    with pytest.raises(fmt.DataFormatError, match="left no avtune data file"):
        registry.cached_preset("llp-sim-small", builder=lambda n, o, s: None)


def test_cache_key_changes_with_preset_params(cache, monkeypatch):
    from dataclasses import replace
    from trainables.tasks.avvp import llp_sim
    k1 = registry.preset_params("llp-sim-tiny")
    monkeypatch.setitem(llp_sim.PRESETS, "llp-sim-tiny",
                        replace(llp_sim.PRESETS["llp-sim-tiny"], n_train=128))
    k2 = registry.preset_params("llp-sim-tiny")
    assert fmt.params_key(*k1) != fmt.params_key(*k2)


def test_path_specs(tmp_path, cache, monkeypatch):
    d = make_llp_sim(tmp_path / "sim", n_train=8, n_val=4, n_test=4).parent
    assert registry.resolve_data(f"llp={d}") == d
    assert registry.resolve_data(f"llp={d / fmt.DATA_FILE}") == d
    monkeypatch.chdir(tmp_path)
    assert registry.resolve_data("llp=sim") == d and d.is_absolute()
    assert "llp-sim data set, 8/4/4 train/val/test videos, truth for train, val, test" in registry.describe_data(f"llp={d}")
    with pytest.raises(ValueError, match="does not exist"):
        registry.resolve_data(f"llp={tmp_path / 'nope'}")
    with pytest.raises(ValueError, match="no avtune data file"):
        registry.resolve_data(f"llp={tmp_path}")
    with pytest.raises(ValueError, match="no path after"):
        registry.resolve_data("llp=")
    other = fmt.write_dataset(tmp_path / "av", video_ids=["a"], split=["train"],
                              arrays={"x": np.zeros((1, 2), np.float32)}, kind="avar-sim", params={})
    with pytest.raises(ValueError, match="holds kind 'avar-sim', expected llp or llp-sim"):
        registry.resolve_data(f"llp={other.parent}")
    assert registry.resolve_data(f"avar={other.parent}") == other.parent
    with pytest.raises(ValueError, match="holds kind 'llp-sim', expected avar"):
        registry.resolve_data(f"avar={d}")
    with pytest.raises(ValueError, match="unknown data spec 'llp-real'"):
        registry.resolve_data("llp-real")


def test_avar_presets_call_the_avar_maker(cache, monkeypatch):
    import trainables.tasks.avar.data as avar_data
    seen = []

    def fake(preset, out, *, seed=0, **noise):
        seen.append((preset, seed))
        return fmt.write_dataset(out, video_ids=["a"], split=["train"],
                                 arrays={"x": np.zeros((1, 2), np.float32)}, kind="avar-sim",
                                 params={"preset": preset})
    monkeypatch.setattr(avar_data, "make_avar_sim", fake)
    p = registry.resolve_data("avar-sim-tiny", seed=4)
    assert seen == [("avar-sim-tiny", 4)] and fmt.read_meta(p)["kind"] == "avar-sim"
    assert registry.resolve_data("avar-sim-tiny", seed=4) == p and len(seen) == 1


def test_every_task_registers_its_presets():
    assert set(registry.all_presets()) == {"llp-sim", "llp-sim-small", "llp-sim-tiny",
                                     "llp-sim-v2", "llp-sim-v2-small", "llp-sim-v2-tiny",
                                     "avar-sim", "avar-sim-small", "avar-sim-tiny"}


def test_describe_does_not_generate(cache):
    text = registry.describe_data("llp-sim")
    assert "10000/649/1200" in text and "float16" in text and "generated on first use" in text
    assert not cache.exists() or not any(cache.iterdir())


def test_avar_preset_options_key_the_cache_and_reach_the_generator():
    from trainables.data.format import read_meta
    from trainables.data.registry import describe_data, resolve_data

    plain = resolve_data("avar-sim-tiny")
    noisy = resolve_data("avar-sim-tiny:noise_rate=0.8,corr_rate=0.3")
    assert plain != noisy
    assert read_meta(noisy)["params"]["noise_rate"] == 0.8
    assert read_meta(noisy)["params"]["corr_rate"] == 0.3
    assert read_meta(plain)["params"]["noise_rate"] != 0.8
    assert resolve_data("avar-sim-tiny:corr_rate=0.3, noise_rate=0.8") == noisy  # order-free key
    assert "noise_rate=0.8" in describe_data("avar-sim-tiny:noise_rate=0.8")


@pytest.mark.parametrize("spec, match", [
    ("avar-sim-tiny:bogus=1", "unknown AR-sim option"),
    ("avar-sim-tiny:noise_rate", "not KEY=VALUE"),
    ("avar-sim-tiny:", "no options"),
    ("llp-sim-tiny:noise_rate=0.2", "takes no options"),
    ("avar-sim-tiny:noise_rate=1.5", "noise_rate must be in"),
])
def test_bad_preset_options_are_named(spec, match):
    from trainables.data.registry import resolve_data

    with pytest.raises(ValueError, match=match):
        resolve_data(spec)


def test_a_task_registers_its_presets_without_editing_the_registry(cache, monkeypatch):
    """The registry names no task: a new family (as a new task's TASK.presets would give) is
    resolved, cached, described and path-checked like the built-in ones."""
    from trainables.data.presets import PresetFamily

    made = []

    def make(name, out, seed, options):
        made.append((name, seed, options))
        return fmt.write_dataset(out, video_ids=["a", "b"], split=["train", "val"],
                                 arrays={"x": np.zeros((2, 3), np.float32)}, kind="toy-sim",
                                 params={"preset": name, **options})

    toy = PresetFamily(path_prefix="toy", kinds=("toy*",), presets={"toy-sim": "toy-sim"},
                       params=lambda n, s, o: ("toy-sim", {"preset": n, "seed": s, **o}), make=make,
                       describe=lambda n, s, o, where, cached: f"{n}: toy, cached={cached}",
                       num_classes=lambda n, o: 7, takes_options=True)
    builtin = registry.families()
    monkeypatch.setattr(registry, "families", lambda: {**builtin, "toy": toy})
    p = registry.resolve_data("toy-sim:width=3", seed=2)
    assert made == [("toy-sim", 2, {"width": 3})] and registry.resolve_data("toy-sim:width=3", seed=2) == p
    assert registry.describe_data("toy-sim:width=3", seed=2) == "toy-sim: toy, cached=True"
    assert registry.data_num_classes("toy-sim") == 7 and "toy-sim" in registry.all_presets()
    assert registry.resolve_data(f"toy={p}") == p
    with pytest.raises(ValueError, match="holds kind 'toy-sim', expected llp or llp-sim"):
        registry.resolve_data(f"llp={p}")
