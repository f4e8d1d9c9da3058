"""HAN (Tian et al., 2020): the hybrid attention network trained on weak labels.

``train``: ``Config`` (the backbone settings of :mod:`trainables.tasks.avvp.backbone`, which every
HAN-based method shares, plus the label source) and ``fit``.
"""

from trainables.core.method import MethodSpec

METHOD = MethodSpec("han", "avvp", module="trainables.methods.han.train", reference="han",
                    description="HAN on weak labels (optional label smoothing, oracle modality "
                                "labels, MA's CL)")
