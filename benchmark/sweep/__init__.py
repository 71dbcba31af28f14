"""Sweeps: the spec, its plan, running it, and the executors that place its trials.

Executors register themselves by name (`benchmark/sweep/executors.py`, `EXECUTORS`); the
Slurm one lives in its own module and is imported here, so every reader of the registry sees it.
"""

from benchmark.sweep import slurm  # noqa: F401  (registers the "slurm" executor)
