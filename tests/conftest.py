"""Test-wide settings: a private data-set cache so tests never touch the user's ~/.cache."""

import os
import sys
import tempfile

# Shared test helpers (tests/tiny_data.py) import by name from any test folder.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# Set at import time (before any test module or Ray worker starts) so that subprocesses inherit it.
os.environ.setdefault("AVTUNE_CACHE", tempfile.mkdtemp(prefix="avtune-test-cache-"))
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")
