"""The official LLP annotation CSVs, packaged with avtune (see README.md in this folder).

``DIR`` is the folder holding ``AVVP_train.csv``, ``AVVP_val_pd.csv``, ``AVVP_test_pd.csv``,
``AVVP_eval_audio.csv`` and ``AVVP_eval_visual.csv``, the layout
:func:`trainables.tasks.avvp.llp.read_annotations` reads.
"""

from pathlib import Path

DIR = Path(__file__).resolve().parent
