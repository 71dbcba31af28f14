"""A trial's compute in floating-point operations: the unit of the analysis's equal compute.

Wall time depends on the machine and on whatever else runs on it; a count of operations
depends only on what the trial computes. Lucic et al. fix their budget in D steps for that
reason; our models differ in cost per step (a penalty's double backward, BEGAN's autoencoder,
n_disc), so a trial's cost is counted in FLOPs with torch's own formulas
(`torch.utils.flop_counter`: matrix products and convolutions, forward and backward, 2 FLOPs
per multiply-add; elementwise work is not counted, as is usual):

- training: one D step and one D-and-G step of the trial's own networks, counted once by
  running them on random data of the dataset's shape through the networks' modules (plain
  `nn.Linear` and convolution layers, whatever kernels the member-batched or compiled step
  uses), times the steps taken of each kind. The count is the trial's alone: a member of a
  population is charged what its trial alone would be.
- evaluation: every operation the evaluator runs for the trial (sampling G, the feature
  network), counted as it runs; the reference statistics, computed once for all trials,
  are not a trial's. Work outside torch (the exact W1 of the mixtures) is not counted.
"""

from __future__ import annotations

import dataclasses

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from benchmark.config import TrialConfig


class FlopCount(TorchDispatchMode):
    """Counts the FLOPs of every operator that torch's flop counter has a formula for.
    (`FlopCounterMode` itself also tracks modules with hooks, which a penalty's
    `autograd.grad` inside a step does not support.)"""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func._overloadpacket not in flop_registry:
            # Under inference mode composite ops (linear) arrive whole: count their parts.
            with self:  # its parts dispatched to this mode again
                decomposed = func.decompose(*args, **kwargs)
            if decomposed is not NotImplemented:
                return decomposed
        out = func(*args, **kwargs)
        count = flop_registry.get(func._overloadpacket)
        if count is not None:
            self.total += count(*args, **kwargs, out_val=out)
        return out


@dataclasses.dataclass(frozen=True)
class StepFlops:
    """FLOPs of one member's D step alone and of a step with a G update too."""

    d_step: int
    d_and_g_step: int

    def training(self, d_steps: int, g_steps: int) -> int:
        """FLOPs of `d_steps` D steps of which `g_steps` were followed by a G update."""
        return (d_steps - g_steps) * self.d_step + g_steps * self.d_and_g_step


def step_flops(trial: TrialConfig) -> StepFlops:
    """The trial's step FLOPs (a function of its structure alone: cached per structure)."""
    from benchmark.training.population import population_key

    # The members' numbers (lr, clip, ...) change no count: one count per structure.
    structure = dataclasses.replace(trial, seed=0, compile=False)
    key = population_key(structure)
    if key not in _COUNTED:
        _COUNTED[key] = _count(structure)
    return _COUNTED[key]


_COUNTED: dict[str, StepFlops] = {}


def _count(trial: TrialConfig) -> StepFlops:
    from benchmark.datasets import DATASETS
    from benchmark.schedule import is_g_step
    from benchmark.training.step import GANTraining

    dataset = DATASETS.get(trial.dataset, "dataset")
    generator = torch.Generator().manual_seed(0)
    n = 2 * trial.batch_size
    if len(dataset.shape) == 1:  # points are stored as floats
        data = torch.randn(n, *dataset.shape, generator=generator)
    else:
        data = torch.randint(0, 256, (n, *dataset.shape), dtype=torch.uint8, generator=generator)
    labels = None
    if trial.conditional:
        labels = torch.randint(0, dataset.classes, (n,), generator=generator)
    training = GANTraining(trial, data, torch.device("cpu"), train_labels=labels, modules=True)
    counts = {}
    while len(counts) < 2 and training.step < 2 + trial.n_disc:
        kind = is_g_step(training.step, trial.n_disc)
        with FlopCount() as counter:
            training.train_step()
        counts.setdefault(kind, counter.total)
    if False not in counts:  # n_disc 1: every step updates G; the D-only count is not needed
        counts[False] = 0
    return StepFlops(d_step=counts[False], d_and_g_step=counts[True])
