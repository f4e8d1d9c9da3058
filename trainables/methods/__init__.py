"""One package per method, each exporting ``METHOD`` (a :class:`trainables.core.method.MethodSpec`).

The orchestrator discovers them here; adding a method is adding a folder.
"""
