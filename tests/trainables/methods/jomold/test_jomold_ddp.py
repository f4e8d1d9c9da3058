"""JoMoLD under torch.distributed (gloo, CPU): the selection ranks over the global batch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from tiny_data import tiny_avvp
from trainables.methods.jomold import train as jomold
from trainables.core import dist as cd
from trainables.tasks.avvp import eval as ae
from trainables.tasks.avvp.data import load_avvp
from trainables.tasks.avvp.han import HAN

ROWS = list(range(3, 40))  # 37 rows: shards of 19 and 18 exercise the padded all-gather


def _model() -> HAN:
    torch.manual_seed(11)
    return HAN(16, 24, 8, d_model=32)


def _ratios(c: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(3)
    return torch.rand(c, generator=g), torch.rand(c, generator=g)


def _select(data_path: str, rank: int, world: int):
    train = load_avvp(data_path, "train")
    gidx = torch.tensor(ROWS)
    local = cd.shard_slice(len(gidx), rank, world)
    idx = gidx[local]
    model = cd.maybe_ddp(_model(), torch.device("cpu"))
    ra, rv = _ratios(train.labels.shape[1])
    inputs = ae.batch_inputs(train, idx, torch.device("cpu"))
    return jomold.select_batch(model, inputs, train.labels[idx], train.labels[gidx], ra, rv)


def _worker(rank: int, world: int, init: str, data_path: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        ga = cd.all_gather_cat(torch.full((rank + 1, 2), float(rank)))
        rem_a, rem_v = _select(data_path, rank, world)
        torch.save({"a": rem_a, "v": rem_v, "gather": ga}, Path(out) / f"rank{rank}.pt")
        cfg = jomold.Config(epochs=2, estimator_epochs=1, batch_size=32, d_model=32, seed=2,
                            warmup_epochs=0.0)
        res = jomold.fit(cfg, data_path, device="cpu", estimator_cache_dir=Path(out) / "est")
        (Path(out) / f"fit{rank}.json").write_text(json.dumps(res))
    finally:
        dist.destroy_process_group()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    return str(tiny_avvp(tmp_path_factory.mktemp("ddp") / "d", seed=2))


@pytest.mark.slow
def test_two_gloo_workers_match_one(tiny, tmp_path):
    """One spawn (process start-up dominates) checks three things:

    the padded all-gather restores rank order; both workers select exactly the labels a single
    process selects for the same global batch; and a full DDP ``fit`` keeps the ranks' weights
    in sync (identical scores) and trains the cached estimator once.
    """
    torch.set_num_threads(1)
    one_a, one_v = _select(tiny, 0, 1)
    assert one_a.any() and one_v.any()  # the comparison must not be vacuous
    mp.spawn(_worker, args=(2, f"file://{tmp_path}/init", tiny, str(tmp_path)), nprocs=2)
    for r in range(2):
        got = torch.load(tmp_path / f"rank{r}.pt", weights_only=True)
        assert got["gather"].tolist() == [[0.0, 0.0], [1.0, 1.0], [1.0, 1.0]]
        assert torch.equal(got["a"], one_a) and torch.equal(got["v"], one_v)
    r0 = json.loads((tmp_path / "fit0.json").read_text())
    r1 = json.loads((tmp_path / "fit1.json").read_text())
    assert len(list((tmp_path / "est").glob("*.pt"))) == 1
    for k in ("val/seg_Type", "test/seg_V", "train/loss", "denoise/precision_v"):
        assert r0[k] == r1[k], k
