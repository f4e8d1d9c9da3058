"""Every registered sweep builds: its space samples valid config fields, and its paper points fit."""

from __future__ import annotations

import math

import optuna
import pytest

import search_spaces
from orchestrator import methods as treg, sweep
from search_spaces.base import SweepSpec
from trainables.core.config import build_config, coerce_value, config_fields

REG = search_spaces.registry()


def _inside(dist, v) -> bool:
    if isinstance(dist, optuna.distributions.CategoricalDistribution):
        return v in dist.choices
    return dist.low <= v <= dist.high


def test_registry_has_the_issue_sweeps():
    assert {"jomold_thresholds", "jomold_warmup", "han_baseline"} <= set(REG)


@pytest.mark.parametrize("name", sorted(REG))
def test_space_samples_in_range_fields(name):
    spec: SweepSpec = REG[name]
    mod = treg.load(spec.trainable)
    fields = config_fields(mod.Config)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=1))
    for _ in range(20):
        t = study.ask()
        consts = spec.space(t) or {}
        params = {**t.params, **consts}
        assert set(params) <= set(fields), f"{name}: {set(params) - set(fields)} not in Config"
        for k, dist in t.distributions.items():
            if isinstance(dist, optuna.distributions.FloatDistribution):
                assert dist.low <= params[k] <= dist.high
        cfg = build_config(mod.Config, {**spec.base, **params})
        assert all(getattr(cfg, k) == v for k, v in params.items())
        study.tell(t, 0.0)


@pytest.mark.parametrize("name", sorted(REG))
def test_points_and_grid_are_inside_the_space(name):
    spec: SweepSpec = REG[name]
    assert spec.points_to_evaluate, f"{name}: no points_to_evaluate (paper defaults first)"
    probe = optuna.create_study().ask()
    spec.space(probe)
    dists = dict(probe.distributions)
    for point in spec.points_to_evaluate:
        # Running the (possibly conditional) space on the point itself: every parameter it asks
        # for must be in the point (FixedTrial raises otherwise), and nothing else may be.
        fixed = optuna.trial.FixedTrial(dict(point))
        spec.space(fixed)
        assert set(point) == set(fixed.distributions), f"{name}: point {point} does not match the space"
        for k, v in point.items():
            assert _inside(fixed.distributions[k], v), f"{name}: {k}={v} outside the space"
        dists.update(fixed.distributions)
    for k, values in (spec.grid or {}).items():
        assert k in dists, f"{name}: grid key {k} is not tuned by the space"
        for v in values:
            assert _inside(dists[k], v), f"{name}: grid {k}={v} outside"


def test_jomold_thresholds_paper_facts():
    spec = REG["jomold_thresholds"]
    assert spec.points_to_evaluate[0] == {"theta_a": 0.6, "theta_v": 1.8}
    assert spec.grid == {"theta_a": [0.5, 0.6, 0.7, 0.8], "theta_v": [1.6, 1.7, 1.8, 1.9, 2.0]}
    t = optuna.create_study().ask()
    spec.space(t)
    d = t.distributions
    assert (d["theta_a"].low, d["theta_a"].high, d["theta_v"].low, d["theta_v"].high) == (0.3, 1.0, 1.2, 2.4)


def test_jomold_warmup_paper_values_and_modes():
    spec = REG["jomold_warmup"]
    warm = [p["warmup_epochs"] for p in spec.points_to_evaluate]
    assert warm[0] == 0.9 and sorted(warm) == [0.0, 0.7, 0.8, 0.9, 1.0]
    assert sorted(spec.grid["warmup_epochs"]) == [0.0, 0.7, 0.8, 0.9, 1.0]
    assert set(spec.grid["warmup_mode"]) == {"paper", "official"}
    mod = treg.load(spec.trainable)
    for mode in spec.grid["warmup_mode"]:
        build_config(mod.Config, {"warmup_mode": mode})  # the trainable accepts every mode


def test_han_baseline_starts_at_paper_defaults():
    spec = REG["han_baseline"]
    mod = treg.load("han")
    first = spec.points_to_evaluate[0]
    default = mod.Config()
    for k, v in first.items():
        assert math.isclose(getattr(default, k), v), k


@pytest.mark.parametrize("name", sorted(REG))
def test_dry_run_of_every_sweep(name, capsys):
    assert sweep.main([name, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"sweep       {name}" in out and "space" in out and "resources" in out and "data" in out
    if REG[name].grid:
        assert sweep.main([name, "--dry-run", "--grid"]) == 0
        assert "grid of" in capsys.readouterr().out


def test_avar_alpha_uses_the_variant_table_overrides():
    """The sweep trains with the same simulated-data deviations as the measured variant table."""
    from trainables.methods.avar.train import PRESETS, Config

    spec = REG["avar_alpha"]
    assert spec.base["preset"] == "sim" and PRESETS["sim"]["lr"] == 3e-4  # the lr grid's choice
    cfg = build_config(Config, dict(spec.base))
    assert cfg.lr == 3e-4 and cfg.variant == "full" and cfg.hidden_dim == 256
    assert cfg.select_metric == "val/video_top1" and cfg.tau2 == Config().tau2


def test_set_preset_builds_the_named_bundle_and_applies_the_rest_on_top():
    mod = treg.load("jomold")
    raw = {"preset": "official", "theta_v": "2.5"}
    cfg = build_config(mod.Config, {k: coerce_value(mod.Config, k, v) for k, v in raw.items()})
    assert (cfg.loss_preset, cfg.cl_weight, cfg.cls_dropout, cfg.theta_v) == ("official", 1.0, 0.5, 2.5)
    with pytest.raises(ValueError, match="unknown JoMoLD preset 'nope'"):
        build_config(mod.Config, {"preset": "nope"})
    han_cfg = treg.load("han").Config
    with pytest.raises(KeyError, match="has no named presets"):
        build_config(han_cfg, {"preset": "official"})
    with pytest.raises(KeyError, match="unknown config key 'preset'"):
        coerce_value(han_cfg, "preset", "official")
