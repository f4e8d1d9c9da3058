"""Noise-tolerant audio-visual action recognition (noisy labels and noisy correspondence).

* ``model``: modal-specific encoders, the classifier and the prototype sets.
* ``losses``: Sinkhorn-Knopp, cross-modal noise estimation (omega), instance- and category-level
  losses, kNN label correction, the hybrid loss and the rank AUC.
* ``train``: ``Config`` and ``fit``.
"""

from trainables.core.method import MethodSpec

# ``check``: the batch must exceed the data set's class count (needs the data, so not validate()).
METHOD = MethodSpec("avar", "avar", module="trainables.methods.avar.train", check="check_spec",
                    description="Noise-tolerant AV action recognition: omega-weighted contrast, "
                                "kNN correction")
