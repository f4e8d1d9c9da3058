"""The rlld_reward_mix sweep: registered, tied/independent alpha2, every tuned key a Config field."""

import dataclasses

import optuna
import pytest

import search_spaces
from search_spaces.rlld_reward_mix import PAPER_AVTUNE, SPEC, SPEC_INDEPENDENT, STABLE
from trainables.methods.rlld.config import PRESETS, Config

FIELDS = {f.name for f in dataclasses.fields(Config)}


def _sample(spec, seed):
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    trial = study.ask()
    consts = spec.space(trial) or {}
    return dict(trial.params), dict(consts)


def test_registered_and_declared():
    import search_spaces.rlld_reward_mix as mod

    assert search_spaces.get("rlld_reward_mix") is SPEC
    assert SPEC.trainable == "rlld" and SPEC.mode == "max" and SPEC.metric == "val/seg_Type"
    assert mod.__doc__.splitlines()[0].startswith("RLLD reward mix: ``python -m orchestrator.sweep "
                                                  "rlld_reward_mix``")
    assert "rlld_reward_mix_independent" not in search_spaces.registry()  # reached by module path


@pytest.mark.parametrize("seed", range(5))
def test_alpha2_tied_by_default(seed):
    params, consts = _sample(SPEC, seed)
    assert set(params) == {"alpha1", "terminal_scale", "terminal_metric_a", "terminal_metric_v",
                           "agent_lr", "staleness", "use_inter_reward", "terminal_delta",
                           "terminal_credit", "class_score", "class_baseline", "adv_norm",
                           "counterfactual"}
    assert 0.0 <= params["alpha1"] <= 1.0
    assert 0.01 <= params["terminal_scale"] <= 1000.0 and 1e-5 <= params["agent_lr"] <= 1e-2
    assert consts == {"alpha2": pytest.approx(1.0 - params["alpha1"])}
    cfg = Config(**{**SPEC.base, **params, **consts})
    assert cfg.alpha1 + cfg.alpha2 == pytest.approx(1.0)
    assert set(params) | set(consts) | set(SPEC.base) <= FIELDS


@pytest.mark.parametrize("seed", range(5))
def test_alpha2_independent_option(seed):
    params, consts = _sample(SPEC_INDEPENDENT, seed)
    assert consts == {} and "alpha2" in params and 0.0 <= params["alpha2"] <= 1.0
    Config(**{**SPEC_INDEPENDENT.base, **params})


def test_paper_point_first_and_valid():
    assert SPEC.points_to_evaluate[0] == PAPER_AVTUNE
    d = Config()
    for k, v in PAPER_AVTUNE.items():
        assert getattr(d, k) == v, k  # the first point is the defaults (avtune's reading)
    for p in (*SPEC.points_to_evaluate, *SPEC_INDEPENDENT.points_to_evaluate):
        Config(**{**SPEC.base, **p})
    assert set(SPEC.grid) <= FIELDS


def test_stable_preset_is_a_point_and_equals_the_preset():
    """The sweep evaluates the "stable" reward preset exactly: that point is the preset."""
    assert STABLE in SPEC.points_to_evaluate
    assert set(STABLE) == set(PAPER_AVTUNE)  # every tuned key set, as a points_to_evaluate entry needs
    assert set(PRESETS["stable"]) <= set(STABLE)
    from_point = Config(**{**SPEC.base, **STABLE})
    from_preset = Config.from_preset("stable", **SPEC.base)
    for k in STABLE:
        assert getattr(from_point, k) == getattr(from_preset, k), k
