"""The action-recognition method's ablation order on AR-sim, seed by seed:
``python -m orchestrator.compare avar_ablation --seeds 5 --data avar-sim-small:label_noise=sym,noise_rate=0.6,corr_rate=0.4``.

Late-fusion cross-entropy, then the method without its contrastive parts (``none``), with the
category-level loss (``cat``), with the instance-level loss (``ins``) and all of it (``full``),
listed from the expected worst to the expected best, each at the ``sim`` preset (a larger
learning rate and narrower MLPs than the paper's: the simulated sets are tiny next to Kinetics).
Seeds share data order and initialisation across entries, so the tables add each step's per-seed
paired differences. The noise setting is the data spec's options (``avar-sim-small:OPTIONS``).
Measured rows and why the order moves: docs/benchmarks.md and docs/sweeps.md.
"""

from __future__ import annotations

from search_spaces.base import ComparisonSpec, Entry

SPEC = ComparisonSpec(
    name="avar_ablation",
    description="AVAR variants late_fusion_ce < none < cat < ins < full on AR-sim, paired by seed",
    entries=tuple(Entry(v, "avar", {"preset": "sim", "variant": v})
                  for v in ("late_fusion_ce", "none", "cat", "ins", "full")),
    metric="val/clip_top1",
    columns=("last/val/clip_top1", "val/video_top1", "train/corrected_label_acc", "train/omega_auc"),
    paired=True,
    cpu_epochs=60,
)
