"""Populations: which trials may train together (`population_key`), how many at once, grouped."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch

from benchmark.config import TrialConfig
from benchmark.datasets import DATASETS
from benchmark.options import BOOKKEEPING, MEMBER, SOLO
from benchmark.training.build import build_networks
from benchmark.training.devices import runs_on_cpu

# A trial and its directory.
Task = tuple[TrialConfig, Path]

# What members of one population may differ in, and what keeps a trial alone, is each option's
# declared role (benchmark/options.py): `member` numbers the step reads from per-member tensors
# and the seed (own initial weights and random streams); `solo` options the member-batched
# layers lack (benchmark/training/stacked_layers.py: spectral norm's parametrization;
# channels_last tunes one network's convolutions), whose trials train alone and call their
# networks' own modules; the sweep's `bookkeeping`. Everything else is structure that every
# member shares.


def trains_alone(trial: TrialConfig) -> bool:
    """Whether an option of the trial that has no member-batched form is set."""
    return any(getattr(trial, o.name) for o in trial.options.values() if o.role == SOLO)


def population_key(trial: TrialConfig) -> str:
    """Trials with equal keys can train together as one population."""
    if trains_alone(trial):
        return f"solo:{trial.trial_id}"
    record = trial.to_dict()
    for option in trial.options.values():
        if option.role == BOOKKEEPING:
            del record[option.name]
        elif option.role == MEMBER:  # whether a value is set is structure (clipping at all)
            record[option.name] = record[option.name] is not None
    return json.dumps(record, sort_keys=True)


def member_bytes(trial: TrialConfig) -> int:
    """Device memory one population member needs, estimated: weights, gradients and two Adam
    moments of G and D (4 copies of the parameters), and about eight copies of the
    activations of one batch through G and D (forward, backward, a penalty's double
    backward), all in float32. Counted on the meta device: nothing is allocated."""

    shape = DATASETS.get(trial.dataset, "dataset").shape
    meta = torch.device("meta")
    with meta:
        g, d = build_networks(trial, shape, meta)
    activations = 0

    def count(module, inputs, output) -> None:
        nonlocal activations
        activations += output.numel()

    for network in (g, d):
        for layer in network.modules():
            if not list(layer.children()):
                layer.register_forward_hook(count)
    z = torch.zeros(trial.batch_size, trial.z_dim, device=meta)
    if trial.conditional:  # G(z, y) and D(x, y)
        y = torch.zeros(trial.batch_size, dtype=torch.long, device=meta)
        d(g(z, y), y)
    else:
        d(g(z))
    parameters = sum(p.numel() for p in (*g.parameters(), *d.parameters()))
    return 4 * (4 * parameters + 8 * activations)


# `population = "auto"` on a CPU, per network family (the trial's generator): the size that
# `nox -s bench` measured fastest per member at one intra-op thread (docs/populations.md:
# the point and MLP networks' steps are dominated by per-kernel overhead, which a population
# pays once; the InfoGAN networks' by their convolutions, which run member by member, so
# there a population buys nothing). The bench flags a choice it measures slower than 1.
AUTO_CPU_SIZES = {"points": 16, "mlp": 16}


def auto_size(trial: TrialConfig, device: str | None, cap: int = 64) -> int:
    """Population size for `population = "auto"`, a function of the trial's structure and the
    device's kind and total memory only (never of free memory or timing), so that a spec
    groups its trials the same way on every run: on the CPU, `AUTO_CPU_SIZES` (1 for other
    families, and for batches on which a member's bits would depend on its population,
    benchmark/training/stacked_layers.py); on a GPU, as many members as half its total memory holds
    (`member_bytes`), at most `cap`."""

    from benchmark.training.stacked_layers import BIT_EXACT_BATCH

    if runs_on_cpu(device) or not torch.cuda.is_available():
        if trial.batch_size % BIT_EXACT_BATCH:  # a member would round otherwise than alone
            return 1
        return AUTO_CPU_SIZES.get(trial.generator, 1)
    index = torch.device(device if device not in (None, "auto") else "cuda").index or 0
    total = torch.cuda.get_device_properties(index).total_memory
    return max(1, min(cap, int(0.5 * total) // member_bytes(trial)))


def populations(
    tasks: Sequence[Task], size: int | str, device: str | None, sharing: int = 1
) -> list[list[Task]]:
    """Tasks grouped into populations: trials with equal `population_key` (structure), in
    planned order, at most `size` per population ("auto": `auto_size` of the group, divided
    among the `sharing` workers of one GPU), the first population of every structure before
    the second of any."""
    groups: dict[str, list[Task]] = {}
    for task in tasks:
        groups.setdefault(population_key(task[0]), []).append(task)
    chunked = []
    for group in groups.values():
        limit = max(1, auto_size(group[0][0], device) // sharing) if size == "auto" else int(size)
        chunked.append([group[start : start + limit] for start in range(0, len(group), limit)])
    # Round by round, a population of each structure: workers that start together train
    # different structures, so each structure's compiled step is compiled once and the
    # next population of it finds it in the compiler's cache.
    rounds = max((len(chunks) for chunks in chunked), default=0)
    return [chunks[k] for k in range(rounds) for chunks in chunked if k < len(chunks)]
