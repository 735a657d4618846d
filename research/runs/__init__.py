"""The run folder as an interface between stages: its file names and columns, its checkpoints,
and restoring a run's inference variables (params and BatchNorm statistics, nothing else)."""
