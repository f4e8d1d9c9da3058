"""VAPLAN (Zhou et al., "Advancing Weakly-Supervised Audio-Visual Video Parsing via Segment-wise
Pseudo Labeling"): segment pseudo labels from CLIP/CLAP teachers (PLG), the richness-aware loss
(PLE) and pseudo-label denoising (PLD), on a HAN backbone.

``pseudo`` (PLG), ``losses`` (PLE), ``denoise`` (PLD), ``labels`` (teacher scores for a data set,
cached; quality against the truth), ``train`` (``Config``, ``fit``).
"""

from trainables.core.method import MethodSpec

# The paper's criterion for its pseudo-label settings (tau, prompts, K/alpha): the quality of the
# labels the final model trains on, as the mean of the visual and audio val segment-level F. Here
# (no torch import) so the sweep that optimises it stays light to import.
QUALITY_KEY = "pseudo/final_seg_F"

METHOD = MethodSpec("vaplan", "avvp", module="trainables.methods.vaplan.train", reference="vaplan",
                    smoke={"stage1_epochs": 2, "batch_size": 16},
                    description="VAPLAN: CLIP/CLAP segment pseudo labels, richness-aware loss, "
                                "label denoising")
