"""Audio-visual video parsing (AVVP) on LLP and LLP-sim: classes, data, metrics, the HAN backbone.

* ``classes``: the 25 LLP classes; ``data``: :class:`~trainables.tasks.avvp.data.AVVPSplit`;
  ``llp``/``llp_export``: real-LLP conversion and export; ``llp_sim``: the simulator.
* ``metrics`` (and ``metrics_reference``, a plain loop version for tests); ``denoise``: label
  denoising quality against hidden truth.
* ``han``: the HAN backbone (one :class:`~trainables.tasks.avvp.han.HybridAttentionLayer`);
  ``eval``: resident data and batched evaluation; ``report``: score keys and published rows.

``TASK`` is what the orchestrator reads (no torch import).
"""

from trainables.core.method import TaskSpec
from trainables.tasks.avvp.report import REFERENCE_NOTE, REFERENCE_ROWS, SCORE_KEYS, SCORE_LABELS

TASK = TaskSpec(
    name="avvp",
    score_keys=SCORE_KEYS,
    score_labels=SCORE_LABELS,
    select_metric="val/seg_Type",
    mode="max",
    reference_rows=REFERENCE_ROWS,
    baseline="han",
    reference_note=REFERENCE_NOTE,
    presets="trainables.tasks.avvp.presets:FAMILY",
    commands="trainables.tasks.avvp.commands:register",
    scorer="trainables.tasks.avvp.scoring:main",
    tiny_data="llp-sim-tiny",
    default_data="llp-sim",
    cpu_data="llp-sim-small",
    default_epochs=25,
    cpu_epochs=3,
    data_note="LLP",
)
