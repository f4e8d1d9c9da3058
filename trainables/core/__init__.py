"""What every method shares: the fit loop and its result, checkpoints, distributed helpers, seeds,
and the method/task declarations (``method``). No ray or mlflow imports."""
