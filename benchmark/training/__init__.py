"""Training: the step, populations, a trial's directory and the run loop (`run_population`).

- `step.py`: the networks of a trial and `GANTraining`, the one training step;
- `population.py`: which trials train together, and how many at once;
- `stacked.py`, `stacked_layers.py`, `memory.py`: how a population runs as one program;
- `trial_dir.py`: records, checkpoints, leftovers, the claim and every file name;
- `loop.py`: `run_trial` / `run_population`, the idempotent entry point for trials;
- `devices.py`: the device a trial runs on.
"""
