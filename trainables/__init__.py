"""Plain-PyTorch core of avtune: data, models, losses, metrics and training loops.

Nothing in this package imports Ray or MLflow at module level, so every piece runs (and is tested)
on a machine that has only torch and numpy.
"""
