"""Audio-visual action recognition under noisy labels and noisy correspondence (AR-sim, real clips).

``data``: the AR-sim generator, the real clip-feature converter and ``load_avar``.
``TASK`` is what the orchestrator reads (no torch import).
"""

from trainables.core.method import TaskSpec

TASK = TaskSpec(
    name="avar",
    score_keys=("clip_top1", "clip_top5", "video_top1"),
    score_labels=("Clip top-1", "Clip top-5", "Video top-1"),
    select_metric="val/clip_top1",
    mode="max",
    reference_rows={},
    reference_note="No published rows: the method's paper reports Kinetics/UCF101 figures on "
                   "data avtune cannot reach.",
    presets="trainables.tasks.avar.presets:FAMILY",
    commands="trainables.tasks.avar.commands:register",
    tiny_data="avar-sim-tiny",
    default_data="avar-sim",
    cpu_data="avar-sim-small",
    default_epochs=60,
    cpu_epochs=12,
    data_note="AR-sim or converted clip features",
)
