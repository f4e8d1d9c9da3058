"""Sinkhorn and the instance loss over the global batch with 2 gloo workers equal one process."""

from __future__ import annotations

import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from trainables.methods.avar.losses import instance_loss, sinkhorn


def _batch():
    g = torch.Generator().manual_seed(0)
    z_v = F.normalize(torch.randn(24, 8, generator=g, dtype=torch.float64), dim=1)
    z_a = F.normalize(torch.randn(24, 8, generator=g, dtype=torch.float64), dim=1)
    protos = F.normalize(torch.randn(5, 8, generator=g, dtype=torch.float64), dim=1)
    w = torch.rand(24, generator=g, dtype=torch.float64)
    return z_v, z_a, protos, w


def _init(rank: int, world: int, out_dir: str) -> None:
    # A file rendezvous: no TCP port to race for with other processes on a shared machine.
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{os.path.join(out_dir, 'rdzv')}",
                            rank=rank, world_size=world)


def _worker(rank: int, world: int, out_dir: str) -> None:
    _init(rank, world, out_dir)
    try:
        z_v, z_a, protos, w = _batch()
        shard = slice(rank * 12, (rank + 1) * 12)
        q = sinkhorn(z_v[shard] @ protos.t(), eps=0.05, iters=3)
        zv = z_v[shard].clone().requires_grad_()
        loss = instance_loss(zv, z_a[shard], protos, w[shard], standardize=True, sk_eps=0.5)
        loss.backward()
        torch.save({"q": q, "loss": loss.detach(), "grad": zv.grad}, os.path.join(out_dir, f"r{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow  # spawning two torch processes takes ~10-40 s on a busy 2-core box
def test_ddp_sinkhorn_equals_single_process_on_concatenated_batch(tmp_path):
    mp.spawn(_worker, args=(2, str(tmp_path)), nprocs=2, join=True)
    r = [torch.load(tmp_path / f"r{i}.pt", weights_only=True) for i in range(2)]
    z_v, z_a, protos, w = _batch()
    q_single = sinkhorn(z_v @ protos.t(), eps=0.05, iters=3, distributed=False)
    torch.testing.assert_close(torch.cat([r[0]["q"], r[1]["q"]]), q_single)
    # A per-shard Sinkhorn would differ: the global batch really is used.
    q_local = sinkhorn(z_v[:12] @ protos.t(), eps=0.05, iters=3, distributed=False)
    assert (q_local - q_single[:12]).abs().max() > 1e-3
    # The mean of the rank losses (what DDP's gradient averaging optimises) equals the global loss,
    # and so do the gradients (up to the 1/world factor of the averaging).
    zv = z_v.clone().requires_grad_()
    loss = instance_loss(zv, z_a, protos, w, standardize=True, sk_eps=0.5)
    loss.backward()
    torch.testing.assert_close((r[0]["loss"] + r[1]["loss"]) / 2, loss.detach())
    torch.testing.assert_close(torch.cat([r[0]["grad"], r[1]["grad"]]) / 2, zv.grad)


def _fit_worker(rank: int, world: int, data: str, out_dir: str) -> None:
    from trainables.methods.avar.train import Config, fit

    _init(rank, world, out_dir)
    try:
        out = fit(Config(**_FIT_CFG), data, device="cpu")
        torch.save(out, os.path.join(out_dir, f"fit{rank}.pt"))
    finally:
        dist.destroy_process_group()


_FIT_CFG = dict(variant="ins", epochs=3, batch_size=16, lr=1e-3, hidden_dim=32, embed_dim=16, cls_hidden=32,
                top_n=4, knn_k=5, warmup_epochs=1)


@pytest.mark.slow  # two spawned torch processes
def test_ddp_fit_matches_single_process(tmp_path):
    from trainables.tasks.avar.data import make_avar_sim
    from trainables.methods.avar.train import Config, fit

    data = make_avar_sim("avar-sim-tiny", tmp_path / "tiny", seed=0)
    mp.spawn(_fit_worker, args=(2, str(data), str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "fit0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "fit1.pt", weights_only=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # same summation order as the single-threaded workers
    try:
        single = fit(Config(**_FIT_CFG), data, device="cpu")
    finally:
        torch.set_num_threads(threads)
    # Ranks agree with each other exactly (same weights after every all-reduced step) ...
    assert r0["val/clip_top1"] == r1["val/clip_top1"]
    # ... and with one process on the whole batch up to float summation order.
    for key in ("val/clip_top1", "val/video_top1", "train/corrected_label_acc"):
        assert abs(r0[key] - single[key]) <= 2.5, key
    assert r0["train/omega_auc"] == pytest.approx(single["train/omega_auc"], abs=0.02)
