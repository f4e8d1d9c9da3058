"""What a task registers with the data-spec registry: its simulated presets and its path prefix.

Each task package names a :class:`PresetFamily` in its ``TASK.presets`` (``"module:attribute"``);
:mod:`trainables.data.registry` discovers them, so adding a task's presets edits nothing here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class PresetFamily:
    """A task's simulated presets and the data kinds its ``PREFIX=PATH`` specs accept.

    Attributes:
        path_prefix: ``llp`` for ``llp=PATH`` specs.
        kinds: Data kinds a path of this prefix may hold; an entry ending in ``*`` is a prefix.
        presets: Preset name -> its CPU-sized variant (itself when already small).
        params: ``f(name, seed, options) -> (kind, params)``: the cache key (validates options).
        make: ``f(name, out_dir, seed, options) -> Path`` writes the preset (no caching).
        describe: ``f(name, seed, options, where, cached) -> str``, one line, generates nothing.
        num_classes: ``f(name, options) -> int``.
        takes_options: Whether ``NAME:key=value`` generator options are accepted.
    """

    path_prefix: str
    kinds: tuple[str, ...]
    presets: Mapping[str, str]
    params: Callable[[str, int, dict[str, Any]], tuple[str, dict[str, Any]]]
    make: Callable[[str, Path, int, dict[str, Any]], Path]
    describe: Callable[[str, int, dict[str, Any], Path, bool], str]
    num_classes: Callable[[str, dict[str, Any]], int]
    takes_options: bool = False

    def accepts_kind(self, kind: str) -> bool:
        return any(kind.startswith(k[:-1]) if k.endswith("*") else kind == k for k in self.kinds)
