"""The action-recognition task's data command (``python -m orchestrator.data convert-avar``)."""

from __future__ import annotations

import argparse
from pathlib import Path


def _convert_avar(args: argparse.Namespace) -> Path:
    from trainables.tasks.avar.data import convert_avar

    return convert_avar(Path(args.feats), Path(args.labels), Path(args.out))


def register(sub) -> None:
    """Adds ``convert-avar`` to the data CLI's subparsers."""
    a = sub.add_parser("convert-avar", help="convert audio-visual action-recognition features")
    a.add_argument("--feats", required=True)
    a.add_argument("--labels", required=True, help="labels CSV")
    a.add_argument("--out", required=True)
    a.set_defaults(func=_convert_avar)
