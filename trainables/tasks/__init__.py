"""One package per task, each exporting ``TASK`` (a :class:`trainables.core.method.TaskSpec`)."""
