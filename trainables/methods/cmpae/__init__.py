"""CMPAE (Gao, Chen and Xu, CVPR 2023): cross-modal presence-absence evidence with joint-modal
mutual learning, on JoMoLD's label denoising.

``train``: ``Config`` (the official code's settings with the task's shared protocol;
``Config.from_preset("official")`` for the official protocol with validation-chosen thresholds),
the shared noise estimator (``prepare``) and ``fit``; ``model``, ``losses``, ``evaluate``.
"""

from trainables.core.method import MethodSpec

# The noise estimator is JoMoLD's official one: ``prepare`` trains it once per data set and seed
# (shared with jomold's official preset through the stage cache).
METHOD = MethodSpec("cmpae", "avvp", module="trainables.methods.cmpae.train", reference="cmpae",
                    prepare="ensure_estimator", check="check", mark="mark",
                    smoke={"estimator_epochs": 2},
                    description="CMPAE: presence/absence evidence per class and modality, mutual "
                                "learning with a global branch, JoMoLD's denoising")
