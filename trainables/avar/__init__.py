"""Noise-tolerant audio-visual action recognition (noisy labels + noisy correspondence).

* ``data``: the AR-sim generator, the real clip-feature converter and ``load_avar``.
* ``model``: modal-specific encoders, the classifier and the prototype sets.
* ``losses``: Sinkhorn-Knopp, cross-modal noise estimation (omega), instance- and category-level
  losses, kNN label correction, the hybrid loss and the rank AUC.
* ``train``: ``Config`` and ``fit`` (the trainable behind the ``avar`` key).
"""
