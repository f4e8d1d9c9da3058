"""RLLD's readings against HAN and JoMoLD on LLP-sim: ``python -m orchestrator.compare
rlld_quality --seeds 3``.

The faithful reading of the paper (``preset=paper``) with its two ablations (no inter-reward, no
label input), avtune's default reading (``paper_avtune``) and the reading measured to denoise
(``stable``), beside HAN and JoMoLD w/o and w/ CL at the same epochs. The denoising figures
(``denoise/precision_v`` ...) are on every child run. RLLD's rewards are synchronous here
(``sync=True``: every policy step waits for its reward), so its rows do not depend on how fast the
validation actors answer. Measured rows: docs/benchmarks.md.
"""

from __future__ import annotations

from search_spaces.base import ComparisonSpec, Entry

SPEC = ComparisonSpec(
    name="rlld_quality",
    description="RLLD paper / ablations / paper_avtune / stable beside HAN and JoMoLD",
    entries=(
        Entry("han", "han"),
        Entry("jomold", "jomold"),
        Entry("jomold_cl", "jomold", {"cl_weight": 1.0}),
        Entry("rlld_paper", "rlld", {"preset": "paper", "sync": True}),
        Entry("rlld_paper_no_inter", "rlld", {"preset": "paper", "sync": True, "use_inter_reward": False}),
        Entry("rlld_paper_no_label", "rlld", {"preset": "paper", "sync": True, "use_label_input": False}),
        Entry("rlld_paper_avtune", "rlld", {"preset": "paper_avtune", "sync": True}),
        Entry("rlld_stable", "rlld", {"preset": "stable", "sync": True}),
    ),
    cpu_epochs=5,
    columns=("denoise/precision_a", "denoise/recall_a", "denoise/precision_v", "denoise/recall_v",
             "rlld/noise_auc_a", "rlld/noise_auc_v"),
)
