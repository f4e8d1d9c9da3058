"""JoMoLD (Cheng et al., 2022): joint modality-aware label denoising on a HAN backbone.

``train``: ``Config`` (paper defaults; ``Config.from_preset("official")`` for the official code's
behaviour), the noise estimator (trained once per data set in ``prepare`` and cached) and ``fit``.
"""

from trainables.core.method import MethodSpec

METHOD = MethodSpec(
    name="jomold",
    task="avvp",
    module="trainables.methods.jomold.train",
    description="JoMoLD: per-class noise ratios from a shared estimator, per-batch label removal",
    prepare="ensure_estimator",
    reference="jomold",
    smoke={"estimator_epochs": 2},
)
