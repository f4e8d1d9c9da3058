"""JoMoLD against HAN on LLP-sim, with the diagnostics that locate its gap to the paper:
``python -m orchestrator.compare jomold_quality --seeds 3``.

HAN with and without the official visual label smoothing, JoMoLD w/o and w/ MA's contrastive term
(the paper's two rows), JoMoLD with every official-code setting, JoMoLD's selection fed the true
noise ratios (Eq. 1's error told apart from the selection's) and HAN on the hidden true modality
labels (the upper bound of label denoising). Measured rows: docs/benchmarks.md.
"""

from __future__ import annotations

from search_spaces.base import ComparisonSpec, Entry

SPEC = ComparisonSpec(
    name="jomold_quality",
    description="HAN, HAN + LS, JoMoLD w/o and w/ CL, official preset, true ratios, oracle labels",
    entries=(
        Entry("han", "han"),
        Entry("han_ls", "han", {"smooth_v": 0.9}),
        Entry("jomold", "jomold"),
        Entry("jomold_cl", "jomold", {"cl_weight": 1.0}),
        Entry("jomold_official", "jomold", {"preset": "official"}),
        Entry("jomold_official_nocl", "jomold", {"preset": "official", "cl_weight": 0.0}),
        Entry("jomold_true_ratios", "jomold", {"ratio_mode": "oracle"}),
        Entry("han_oracle_labels", "han", {"label_source": "oracle"}),
    ),
    # 12 epochs on llp-sim-small is the CPU table of docs/benchmarks.md; 25 is the paper's.
    cpu_epochs=12,
    columns=("denoise/precision_a", "denoise/recall_a", "denoise/precision_v", "denoise/recall_v",
             "noise_ratio/mae_a", "noise_ratio/mae_v"),
)
