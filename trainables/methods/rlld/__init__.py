"""RLLD: reinforcement-learning label denoising (a policy agent removes labels; rewards from
validation), on a HAN task network.

``learner``: ``Config``, the rewards, the learner and ``fit``; ``agent``: the policy network;
``pool``: the Ray validation-actor pool, reached only through ``METHOD``'s hooks.
"""

from trainables.core.method import MethodSpec

METHOD = MethodSpec(
    name="rlld",
    task="avvp",
    config="trainables.methods.rlld.learner:Config",
    fit="trainables.methods.rlld.learner:fit",
    description="RLLD: a policy agent removes noisy modality labels, rewarded by validation",
    extra_kwargs="trainables.methods.rlld.pool:evaluator_kwargs",
    extra_bundles="trainables.methods.rlld.pool:extra_bundles",
    reference="rlld",
)
