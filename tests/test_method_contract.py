"""The contract every method keeps, checked for every discovered ``METHOD``.

A 2-epoch fit on the task's tiny preset: the result carries the same keys for every method (the
selected epoch's metrics, ``test/...`` of the selected weights, ``best_epoch``, ``last_epoch``,
``last/val/...``, ``seed``); a checkpoint loads with ``weights_only=True`` and resuming from it
equals the uninterrupted run; resuming under a different config is refused; bad config values are
rejected when the config is built (which the sweep CLI does at plan time, before any trial).
"""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from orchestrator.methods import discover, get_task, load, load_hook
from trainables.core.config import build_config
from trainables.data.format import read_meta
from trainables.data.registry import resolve_data

METHODS = discover()


def _untimed(result):
    return {k: v for k, v in result.items() if not k.startswith(("time/", "last/time/"))}


@pytest.fixture(scope="module", params=sorted(METHODS))
def run(request, tmp_path_factory):
    """One method's 2-epoch fit, with every epoch's metrics and checkpoint."""
    torch.set_num_threads(1)
    spec = METHODS[request.param]
    task = get_task(spec.task)
    method = load(spec.name)
    cfg = build_config(method.Config, {**spec.smoke, "epochs": 2, "seed": 1})
    data = resolve_data(task.tiny_data)
    prepare = load_hook(spec.prepare)
    if prepare is not None:
        prepare(cfg, data, "cpu")  # what the sweep driver runs once before the trials
    seen, states = [], {}

    def reporter(epoch, metrics, state_fn):
        seen.append(dict(metrics))
        path = tmp_path_factory.mktemp(spec.name) / f"state{epoch}.pt"
        torch.save(state_fn(), path)
        states[epoch] = path

    result = method.fit(cfg, data, reporter=reporter, device="cpu")
    return spec, task, method, cfg, data, result, seen, states


def test_result_keys_are_the_selected_epochs(run):
    spec, task, _, cfg, data, result, seen, _ = run
    assert [int(m["epoch"]) for m in seen] == [0, 1]
    has_test = read_meta(data)["splits"].get("test", 0) > 0
    want = {"epoch", "train/loss", "best_epoch", "last_epoch", "seed"}
    want |= {f"val/{k}" for k in task.score_keys} | {f"last/val/{k}" for k in task.score_keys}
    if has_test:
        want |= {f"test/{k}" for k in task.score_keys}
    assert want <= set(result), sorted(want - set(result))
    assert all(math.isfinite(float(result[k])) for k in want)
    # Selected = the best epoch by the method's select_metric (the first of equal ones).
    metric = cfg.select_metric
    best = max(range(len(seen)), key=lambda i: (seen[i][metric], -i))
    assert result["best_epoch"] == best and result["epoch"] == best and result["last_epoch"] == 1
    assert result[metric] == seen[best][metric]
    assert all(result[f"val/{k}"] == seen[best][f"val/{k}"] for k in task.score_keys)
    assert all(result[f"last/val/{k}"] == seen[-1][f"val/{k}"] for k in task.score_keys)
    assert result["seed"] == 1


def test_resume_from_a_weights_only_checkpoint_equals_the_uninterrupted_run(run):
    _, _, method, cfg, data, result, _, states = run
    state = torch.load(states[0], weights_only=True)
    resumed = method.fit(cfg, data, resume_state=state, device="cpu")
    assert _untimed(resumed) == _untimed(result)


def test_resume_under_another_config_is_refused(run):
    _, _, method, cfg, data, _, _, states = run
    state = torch.load(states[0], weights_only=True)
    other = dataclasses.replace(cfg, seed=cfg.seed + 1)
    with pytest.raises(ValueError, match="different config: seed: saved 1, now 2"):
        method.fit(other, data, resume_state=state, device="cpu")


@pytest.mark.parametrize("name", sorted(METHODS))
def test_bad_config_values_are_rejected_when_built(name):
    method = load(name)
    for bad in ({"epochs": 0}, {"batch_size": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            build_config(method.Config, bad)
    with pytest.raises(KeyError, match="no_such_field"):
        build_config(method.Config, {"no_such_field": 1})


def test_every_method_names_a_known_task_and_loadable_pieces():
    assert {"han", "jomold", "rlld", "avar"} <= set(METHODS)
    for spec in METHODS.values():
        task = get_task(spec.task)
        assert task.tiny_data and task.select_metric
        for hook in ("prepare", "extra_kwargs", "extra_bundles", "check"):
            ref = getattr(spec, hook)
            assert ref is None or ref.startswith(f"trainables.methods.{spec.name}."), (spec.name, ref)
