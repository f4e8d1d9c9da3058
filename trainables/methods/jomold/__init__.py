"""JoMoLD (Cheng et al., 2022): joint modality-aware label denoising on a HAN backbone.

``train``: ``Config`` (paper defaults; ``Config.from_preset("official")`` for the official code's
behaviour), the noise estimator (trained once per data set in ``prepare`` and cached) and ``fit``.
"""

from trainables.core.method import MethodSpec

# The noise estimator does not depend on the thresholds: ``prepare`` trains it once per sweep.
METHOD = MethodSpec("jomold", "avvp", module="trainables.methods.jomold.train", reference="jomold",
                    prepare="ensure_estimator", smoke={"estimator_epochs": 2},
                    description="JoMoLD: per-class noise ratios from a shared estimator, per-batch "
                                "label removal")
