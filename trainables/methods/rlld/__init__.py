"""RLLD: reinforcement-learning label denoising (a policy agent removes labels; rewards from
validation), on a HAN task network.

``config``: ``Config`` (HAN's fields plus RLLD's) and its presets (``Config.from_preset``);
``agent``: the policy networks; ``rewards``, ``baselines``, ``updates``: the reward and the agent
update; ``evaluator``: where validation rewards come from; ``learner``: episodes and late rewards;
``diagnostics``: epoch and denoising figures; ``training``: ``fit``; ``pool``: the Ray
validation-actor pool, reached only through ``METHOD``'s hooks; ``bench``: the benchmark.
"""

from trainables.core.method import MethodSpec

# The validation pool is Ray's: reached only through these hooks, inside a trial.
METHOD = MethodSpec("rlld", "avvp", config="trainables.methods.rlld.config:Config",
                    fit="trainables.methods.rlld.training:fit", reference="rlld",
                    extra_kwargs="trainables.methods.rlld.pool:evaluator_kwargs",
                    extra_bundles="trainables.methods.rlld.pool:extra_bundles",
                    description="RLLD: a policy agent removes noisy modality labels, rewarded by "
                                "validation")
