"""avtune orchestrator: CLIs, Ray Tune/Train glue and MLflow reporting."""
