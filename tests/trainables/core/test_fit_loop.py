"""trainables.core.loop: batching, sharding, RNG checkpoints, model selection."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from trainables.core import checkpoint as ck
from trainables.core import dist as cd
from trainables.core import loop as tc
from trainables.tasks.avvp import eval as ae


@pytest.mark.parametrize("b,world", [(37, 2), (128, 3), (5, 4), (1, 2), (64, 1)])
def test_shards_cover_the_batch_in_rank_order(b, world):
    parts = [cd.shard_slice(b, r, world) for r in range(world)]
    rows = [i for s in parts for i in range(b)[s]]
    assert rows == list(range(b))
    sizes = [len(range(b)[s]) for s in parts]
    assert max(sizes) - min(sizes) <= 1
    assert cd.shard_sizes(b, world) == sizes


def test_epoch_batches_are_a_seeded_permutation():
    g1, g2 = torch.Generator().manual_seed(4), torch.Generator().manual_seed(4)
    b1 = [i for i, _ in tc.epoch_batches(300, 128, g1, torch.device("cpu"))]
    b2 = [i for i, _ in tc.epoch_batches(300, 128, g2, torch.device("cpu"))]
    assert [len(b) for b in b1] == [128, 128, 44]
    assert all(torch.equal(x, y) for x, y in zip(b1, b2))
    assert sorted(torch.cat(b1).tolist()) == list(range(300))
    # the next epoch differs
    b3 = [i for i, _ in tc.epoch_batches(300, 128, g1, torch.device("cpu"))]
    assert not torch.equal(b1[0], b3[0])


def test_rng_state_round_trips_through_weights_only_checkpoint(tmp_path):
    gen = torch.Generator().manual_seed(9)
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    torch.randperm(10, generator=gen)
    state = ck.rng_state(gen)
    expected = (torch.rand(3), np.random.rand(3), random.random(), torch.randperm(10, generator=gen))
    torch.save(state, tmp_path / "s.pt")
    loaded = torch.load(tmp_path / "s.pt", weights_only=True)
    torch.manual_seed(100), np.random.seed(100), random.seed(100)
    gen2 = torch.Generator().manual_seed(100)
    ck.set_rng_state(loaded, gen2)
    got = (torch.rand(3), np.random.rand(3), random.random(), torch.randperm(10, generator=gen2))
    assert torch.equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
    assert got[2] == expected[2] and torch.equal(got[3], expected[3])


def test_best_tracker_modes_and_missing_metric():
    net = torch.nn.Linear(2, 1)
    best = tc.BestTracker("val/seg_Type", tc.select_mode("val/seg_Type"))
    for epoch, v in enumerate([10.0, 30.0, 20.0]):
        with torch.no_grad():
            net.weight.fill_(epoch)
        best.update(epoch, {"val/seg_Type": v}, net)
    assert best.epoch == 1 and best.weights["weight"].eq(1).all()
    low = tc.BestTracker("val/loss", tc.select_mode("val/loss"))
    for epoch, v in enumerate([3.0, 1.0, 2.0]):
        low.update(epoch, {"val/loss": v}, net)
    assert low.mode == "min" and low.epoch == 1
    with pytest.raises(KeyError, match="val/seg_X"):
        tc.BestTracker("val/seg_X").update(0, {"val/seg_Type": 1.0}, net)


def test_smoothing_and_gather_without_dist():
    y = torch.tensor([[1.0, 0.0]])
    assert ae.smooth(y, 0.9).tolist() == [[pytest.approx(0.95), pytest.approx(0.05)]]
    assert ae.smooth(y, 1.0) is y
    t = torch.arange(6).reshape(3, 2)
    assert cd.all_gather_cat(t) is t
    assert cd.dist_info() == (0, 1)


def test_optimizer_schedule_is_han_default():
    net = torch.nn.Linear(2, 1)
    opt, sched = tc.make_optimizer(net)
    lrs = []
    for _ in range(13):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == 5e-4 and lrs[5] == 5e-4
    assert lrs[6] == pytest.approx(1.25e-4) and lrs[12] == pytest.approx(3.125e-5)
