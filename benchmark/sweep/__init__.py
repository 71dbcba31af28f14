"""Sweeps: the spec, its plan, running it, and the executors that place its trials."""
