"""VALOR (Lai et al., NeurIPS 2023): modality-independent CLIP/CLAP teachers harvest segment labels
per modality, restricted to the weak labels, and a HAN-style student trains on them.

``harvest`` (label elaboration: teacher logits, per-class thresholds, sources), ``losses``,
``optim`` (AdamW, warm-up + cosine, clipping), ``train`` (``Config``, presets, ``fit``),
``calibrate`` (LLP-sim's thresholds), ``export`` (the harvested labels in VALOR's file layout,
for the official code).
"""

from trainables.core.method import MethodSpec

METHOD = MethodSpec("valor", "avvp", module="trainables.methods.valor.train", reference="valor",
                    mark="mark", smoke={"batch_size": 32, "warmup_epochs": 1, "d_model": 64,
                                        "dim_feedforward": 128},
                    description="VALOR: per-modality segment labels from CLIP/CLAP teachers "
                                "(per-class thresholds, weak-label mask), HAN-style student")
