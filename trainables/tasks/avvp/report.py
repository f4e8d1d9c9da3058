"""What an AVVP result is reported as: the ten score keys, their column labels, published rows.

Pure Python (no torch), so the orchestrator's tables and CLIs import it cheaply.
"""

from __future__ import annotations

import math

# The ten LLP F-scores (0..100), segment-level then event-level, in the papers' column order.
SCORE_KEYS: tuple[str, ...] = (
    "seg_A", "seg_V", "seg_AV", "seg_Type", "seg_Event",
    "event_A", "event_V", "event_AV", "event_Type", "event_Event",
)
SCORE_LABELS: tuple[str, ...] = (
    "Seg A", "Seg V", "Seg AV", "Seg Type", "Seg Event",
    "Event A", "Event V", "Event AV", "Event Type", "Event Event",
)

_NA = math.nan  # a figure the paper does not state

# Published test-set scores on the real LLP data set (SCORE_KEYS order), keyed by the method they
# belong to. Context for the reader, not comparable one-to-one with LLP-sim runs. A figure the paper
# does not state is NaN (RLLD's paper gives only its seg Type@AV, 61.5, in the text).
REFERENCE_ROWS: dict[str, tuple[tuple[str, tuple[float, ...]], ...]] = {
    "han": (("HAN (Tian et al., 2020) [real LLP, reference]",
             (60.1, 52.9, 48.9, 54.0, 55.4, 51.3, 48.9, 43.0, 47.7, 48.0)),),
    # JoMoLD (Cheng et al., ECCV 2022), its comparison on LLP test: without and with MA's
    # contrastive term ("w/ CL", the paper's headline row).
    "jomold": (("JoMoLD w/o CL (Cheng et al., 2022) [real LLP, reference]",
                (60.6, 62.2, 56.0, 59.6, 58.6, 53.1, 58.9, 49.4, 53.8, 51.4)),
               ("JoMoLD w/ CL (Cheng et al., 2022) [real LLP, reference]",
                (61.3, 63.8, 57.2, 60.8, 59.9, 53.9, 59.9, 49.6, 54.5, 52.5))),
    "rlld": (("RLLD, seg Type@AV only (its paper's text) [real LLP, reference]",
              (_NA, _NA, _NA, 61.5, _NA, _NA, _NA, _NA, _NA, _NA)),),
    # VAPLAN (Zhou et al., IJCV 2024, arXiv 2406.00919), Table 5: (1) the HAN baseline as the
    # table prints it (HAN's own figures), (2) PLG video-level labels, (4) + L_S, (5) + PLD (full).
    "vaplan": (
        ("VAPLAN (1) HAN baseline (Zhou et al.) [real LLP, reference]",
         (60.1, 52.9, 48.9, 54.0, 55.4, 51.3, 48.9, 43.0, 47.7, 48.0)),
        ("VAPLAN (2) PLG video-level (Zhou et al.) [real LLP, reference]",
         (59.8, 64.1, 57.5, 60.5, 58.3, 50.8, 60.2, 50.7, 53.9, 49.3)),
        ("VAPLAN (4) + richness loss (Zhou et al.) [real LLP, reference]",
         (61.2, 65.8, 59.1, 62.0, 60.2, 54.8, 62.4, 52.6, 56.6, 53.3)),
        ("VAPLAN (5) + PLD, full (Zhou et al.) [real LLP, reference]",
         (62.4, 66.7, 60.3, 63.1, 61.4, 55.7, 63.3, 53.7, 57.6, 54.3)),
    ),
    # The rows below are the ten figures as UWAV (Lai et al., CVPR 2025, arXiv 2505.09615) quotes
    # them in its Table 1 (LLP test, VGGish / ResNet-152 / R(2+1)D features); the methods' own
    # papers could not be read here. Their seg/event Type@AV agree with the figures each paper's
    # abstract or text reports where we could check (VALOR: HAN's 54.0 + 8.0 = 62.0).
    "valor": (
        ("VALOR (Lai et al., 2023) [real LLP, reference]",
         (61.8, 65.9, 58.4, 62.0, 61.5, 55.4, 62.6, 52.2, 56.7, 54.2)),
        # UWAV supplementary Table A6, "VALOR†": CLIP/CLAP features as the student's inputs.
        ("VALOR, CLIP/CLAP inputs (Lai et al., as in UWAV Table A6) [real LLP, reference]",
         (68.1, 68.4, 61.9, 66.2, 66.8, 61.2, 64.7, 55.5, 60.4, 59.0)),
    ),
    # CMPAE's test protocol decodes with per-class visual thresholds chosen on the validation set.
    "cmpae": (("CMPAE (Gao et al., 2023), val-chosen thresholds [real LLP, reference]",
               (64.2, 66.4, 59.2, 63.3, 62.8, 56.6, 63.7, 51.8, 57.4, 55.7)),),
    "lsld": (("LSLD (Fan et al., 2023) [real LLP, reference]",
              (62.7, 67.1, 59.4, 63.1, 62.2, 55.7, 64.3, 52.6, 57.6, 55.2)),),
    # As printed: its event-level Type@AV (57.9) is not the mean of its event A/V/AV (58.3).
    "coleaf": (("CoLeaF (Sardari et al., 2024) [real LLP, reference]",
                (64.2, 64.4, 59.3, 62.6, 62.5, 57.6, 63.2, 54.2, 57.9, 55.6)),),
    "leap": (("LEAP (Zhou et al., 2024) [real LLP, reference]",
              (62.7, 65.6, 59.3, 62.5, 61.8, 56.4, 63.1, 54.1, 57.8, 55.0)),),
    "uwav": (("UWAV (Lai et al., 2025) [real LLP, reference]",
              (64.2, 70.0, 63.4, 65.9, 63.9, 58.6, 66.7, 57.5, 60.9, 57.4)),),
}

REFERENCE_NOTE = ("Rows marked [real LLP, reference] are the published test scores on the real LLP "
                  "data set, shown for context only; they are not comparable one-to-one with "
                  "simulated data.")
