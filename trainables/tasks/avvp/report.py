"""What an AVVP result is reported as: the ten score keys, their column labels, published rows.

Pure Python (no torch), so the orchestrator's tables and CLIs import it cheaply.
"""

from __future__ import annotations

# The ten LLP F-scores (0..100), segment-level then event-level, in the papers' column order.
SCORE_KEYS: tuple[str, ...] = (
    "seg_A", "seg_V", "seg_AV", "seg_Type", "seg_Event",
    "event_A", "event_V", "event_AV", "event_Type", "event_Event",
)
SCORE_LABELS: tuple[str, ...] = (
    "Seg A", "Seg V", "Seg AV", "Seg Type", "Seg Event",
    "Event A", "Event V", "Event AV", "Event Type", "Event Event",
)

# Published test-set scores on the real LLP data set (SCORE_KEYS order), keyed by the method they
# belong to. Context for the reader, not comparable one-to-one with LLP-sim runs. Only rows whose
# ten figures the papers state are listed (RLLD's paper gives its seg Type@AV 61.5 in the text,
# not a full row here).
REFERENCE_ROWS: dict[str, tuple[tuple[str, tuple[float, ...]], ...]] = {
    "han": (("HAN (Tian et al., 2020) [real LLP, reference]",
             (60.1, 52.9, 48.9, 54.0, 55.4, 51.3, 48.9, 43.0, 47.7, 48.0)),),
    "jomold": (("JoMoLD w/o CL (Cheng et al., 2022) [real LLP, reference]",
                (60.6, 62.2, 56.0, 59.6, 58.6, 53.1, 58.9, 49.4, 53.8, 51.4)),),
    # VAPLAN (Zhou et al.), Table 5: (2) PLG video-level labels, (4) + L_S, (5) + PLD (full).
    "vaplan": (
        ("VAPLAN (2) PLG video-level (Zhou et al.) [real LLP, reference]",
         (59.8, 64.1, 57.5, 60.5, 58.3, 50.8, 60.2, 50.7, 53.9, 49.3)),
        ("VAPLAN (4) + richness loss (Zhou et al.) [real LLP, reference]",
         (61.2, 65.8, 59.1, 62.0, 60.2, 54.8, 62.4, 52.6, 56.6, 53.3)),
        ("VAPLAN (5) + PLD, full (Zhou et al.) [real LLP, reference]",
         (62.4, 66.7, 60.3, 63.1, 61.4, 55.7, 63.3, 53.7, 57.6, 54.3)),
    ),
}

REFERENCE_NOTE = ("Rows marked [real LLP, reference] are the published test scores on the real LLP "
                  "data set, shown for context only; they are not comparable one-to-one with "
                  "simulated data.")
