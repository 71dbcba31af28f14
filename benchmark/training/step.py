"""The training step: `GANTraining`, one population's shared step (its networks: `build.py`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from functools import partial
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import vmap

from benchmark.config import TrialConfig
from benchmark.latents import LATENTS
from benchmark.losses import LOSSES, discriminator_targets
from benchmark.penalties import PENALTIES
from benchmark.schedule import is_g_step
from benchmark.training.build import build_networks
from benchmark.training.compiled import CompiledStep
from benchmark.training.memory import keep_freed_memory
from benchmark.training.order import EpochWalk, PerMember
from benchmark.training.population import population_key, trains_alone
from benchmark.training.stacked import MemberStreams, StackedAdam, StackedNetwork

LOG_EVERY = 50


def uniform_z(n: int, z_dim: int, rng: torch.Generator, device: torch.device) -> Tensor:
    """z ~ U[-1, 1]^z_dim, as in the reference study."""
    return torch.rand(n, z_dim, generator=rng, device=device) * 2 - 1


def _with_labels(outputs: Callable[..., Tensor], labels: Tensor, points: Tensor) -> Tensor:
    """A conditional D's outputs at `points` with the labels fixed: a function of the points."""
    return outputs(points, labels)


def _map(function: Callable[[Tensor], Tensor], value: Tensor | dict[str, Tensor]):
    """`function` on a tensor, or on each tensor of a dict (a loss state)."""
    if isinstance(value, dict):
        return {name: function(t) for name, t in value.items()}
    return function(value)


# The fixed latent pool's seed (`latent_pool`): one set of z for every trial, as code that
# draws its z set once before seeding each run (Welfert et al. 2023: seed 1) has it.
LATENT_POOL_SEED = 1


class GANTraining:
    """One population of trials (one trial is a population of one): the stacked networks,
    optimisers, random streams and counters, and the training step they share.

    Member i of a population computes what its trial computes alone: its own initial weights,
    lr, betas, clip, lambda, k, random streams and batch-norm statistics; the step's
    arithmetic is per member (member-batched layers over stacked weights), and the members'
    losses are summed only so that one backward pass yields each member's own gradient. A
    member whose loss goes non-finite keeps its slot, so that nobody else's arithmetic
    changes, and the caller stops recording it (`finite`, `diverged_at`).
    """

    def __init__(
        self,
        trials: TrialConfig | Sequence[TrialConfig],
        train_images: Tensor,
        device: torch.device,
        train_labels: Tensor | None = None,
        modules: bool = False,
    ) -> None:
        """`train_labels` (int64 (N,)) are the images' classes, which a conditional trial
        needs. With `trial.compile` the step runs as one compiled program (compiled.py).
        `modules`: a trial alone calls its networks' own modules (nn.Linear, not the
        member-batched layers), as the FLOP count does (benchmark/training/flops.py)."""
        keep_freed_memory()  # large tensors stay mapped between steps (memory.py)
        trials = [trials] if isinstance(trials, TrialConfig) else list(trials)
        keys = {population_key(t) for t in trials}
        if len(keys) != 1:
            raise ValueError("a population's trials must share every structural field")
        self.trials = trials
        self.trial = trial = trials[0]  # its structural fields are every member's
        self.device = device
        self.images = train_images.to(device)  # uint8 (N, C, H, W), resident on the device
        self.conditional = trial.conditional
        if self.conditional and train_labels is None:
            raise ValueError("a conditional trial needs the training images' labels")
        self.labels = train_labels.to(device) if self.conditional else None
        shape = tuple(train_images.shape[1:])
        generators, discriminators = zip(
            *(build_networks(t, shape, device) for t in trials), strict=True
        )
        self.memory_format = torch.channels_last if trial.channels_last else torch.preserve_format
        for network in (*generators, *discriminators):
            network.to(memory_format=self.memory_format)
        plain = modules or trains_alone(trial)
        self.generator = StackedNetwork(generators, self.memory_format, plain)
        self.discriminator = StackedNetwork(discriminators, self.memory_format, plain)
        adam = [self._values(name) for name in ("lr", "beta1", "beta2")]  # one set for G and D
        self.g_opt = StackedAdam(self.generator, *adam)
        self.d_opt = StackedAdam(self.discriminator, *adam)
        # The networks' dtype: real batches and D's outputs (float32 under bf16 autocast) in it.
        self.dtype = dtype = self.generator.flat.dtype
        self.clip = self._values("clip") if trial.clip is not None else None
        self.lam = self._values("lam").to(dtype) if trial.lam is not None else None
        self.loss = LOSSES.get(trial.loss)
        self.penalty = PENALTIES.get(trial.penalty)
        self.hparams = {name: self._values(name).to(dtype) for name in self.loss.needs}
        self.loss_state = {
            name: value.expand(len(trials)).clone()
            for name, value in self.loss.initial_state(device).items()
        }
        self.latent = LATENTS.get(trial.latent)
        # Label smoothing or flipping: D's loss with explicit targets (only losses that have it
        # pass validation).
        self.targets = trial.label_smoothing > 0 or trial.label_flip > 0
        self.streams = MemberStreams([t.seed for t in trials], device)
        # Walks reshuffled every epoch instead of fresh draws (benchmark/training/order.py):
        # over the training set, and over a fixed set of z drawn once, shared by every trial.
        seeds = [t.seed for t in trials]
        self.data_walk = self.latent_walk = self.latent_pool = None
        if trial.data_order == "epochs":
            self.data_walk = EpochWalk(seeds, len(self.images), trial.batch_size, "data", device)
        if trial.latent_pool:
            pool_rng = torch.Generator(device=device).manual_seed(LATENT_POOL_SEED)
            self.latent_pool = self.latent.sample(trial.latent_pool, trial.z_dim, pool_rng, device)
            self.latent_walk = EpochWalk(seeds, trial.latent_pool, trial.batch_size, "z", device)
        self.step = 0
        self.g_steps = 0
        self.finite = torch.ones(len(trials), dtype=torch.bool, device=device)
        self.diverged_at = torch.zeros(len(trials), dtype=torch.long, device=device)  # 0: no
        self.last = {
            "d_loss": torch.zeros(len(trials), device=device),
            "g_loss": torch.zeros(len(trials), device=device),
        }
        self.autocast = (
            torch.autocast(device.type, dtype=torch.bfloat16)
            if trial.amp_dtype == "bf16"
            else nullcontext()
        )
        self.program = CompiledStep(self) if trial.compile else None

    def _values(self, name: str) -> Tensor:
        """The members' values of a hyperparameter, (M,) float64 (unset: NaN)."""
        values = [getattr(t, name) for t in self.trials]
        values = [math.nan if v is None else float(v) for v in values]
        return torch.tensor(values, dtype=torch.float64, device=self.device)

    @property
    def size(self) -> int:
        return len(self.trials)

    def _per_member(self, function: Callable[..., Any], *args: Any) -> Any:
        """`function` (written for one batch) applied to each member's slice of the stacked
        arguments: vmap over the members; a population of one calls it directly."""
        if self.size == 1:
            out = function(*(_map(lambda t: t[0], a) for a in args))
            return _map(lambda t: t.unsqueeze(0), out)
        return vmap(function)(*args)

    @property
    def g(self) -> nn.Module:
        """Member 0's generator as a module (for a population of one: the trial's G)."""
        return self.generator.member_module(0)

    @property
    def d(self) -> nn.Module:
        """Member 0's discriminator as a module."""
        return self.discriminator.member_module(0)

    def _indices(self) -> Tensor:
        """(M, B) training-set indices, uniform with replacement, from each member's stream (or
        the step's batch of each member's epoch walk)."""
        if self.data_walk is not None:
            walk = self.data_walk
            return self.streams.draw(PerMember(lambda i: walk.indices(i, self.step)))
        n, batch = len(self.images), self.trial.batch_size
        return self.streams.draw(
            lambda g: torch.randint(n, (batch,), generator=g, device=self.device)
        )

    def _images_at(self, index: Tensor) -> Tensor:
        batch = self.images[index].to(self.dtype)
        return batch.div_(255) if self.images.dtype == torch.uint8 else batch  # points as stored

    def real_batch(self) -> Tensor:
        """(M, B, C, H, W) in [0, 1] (points: (M, B, D) as stored): each member's batch drawn
        by index from its own stream."""
        return self._images_at(self._indices())

    def labelled_real_batch(self) -> tuple[Tensor, Tensor]:
        """A real batch and its labels (M, B): one draw of indices, as `real_batch` draws."""
        index = self._indices()
        return self._images_at(index), self.labels[index]

    def sample_labels(self) -> Tensor:
        """(M, B) labels for a fresh z: the labels of uniformly drawn training samples, i.e.
        draws from the data's class frequencies, from each member's own stream."""
        return self.labels[self._indices()]

    def _real(self) -> tuple[Tensor, Tensor | None]:
        return self.labelled_real_batch() if self.conditional else (self.real_batch(), None)

    def _g(self, z: Tensor, y: Tensor | None) -> Tensor:
        return self.generator(z) if y is None else self.generator(z, y)

    def _d(self, x: Tensor, y: Tensor | None) -> Tensor:
        return self.discriminator(x) if y is None else self.discriminator(x, y)

    def sample_z(self) -> Tensor:
        """(M, B, z_dim), each member's z from its own stream (or the step's batch of each
        member's walk over the fixed latent pool)."""
        if self.latent_pool is not None:
            pool, walk = self.latent_pool, self.latent_walk
            return self.streams.draw(PerMember(lambda i: pool[walk.indices(i, self.step)]))
        trial = self.trial
        return self.streams.draw(
            lambda g: self.latent.sample(trial.batch_size, trial.z_dim, g, self.device)
        )

    def _d_step(self, real: Tensor, z: Tensor, y: Tensor | None = None) -> Tensor:
        """D's loss on a real batch and G(z); a conditional trial's fakes take the real batch's
        labels y, so that every point a penalty evaluates D at (a real sample, its fake
        partner, a point between or near them) has one label: the penalty sees x -> D(x, y)."""
        trial = self.trial
        with self.autocast:
            with torch.no_grad():
                fake = self._g(z, y)
            real_out = self._d(real, y).to(self.dtype)
            fake_out = self._d(fake, y).to(self.dtype)
            if self.targets:
                real_target, fake_target = discriminator_targets(
                    real_out,
                    fake_out,
                    trial.label_smoothing,
                    trial.label_flip,
                    self.streams.uniform,
                )
                d_loss = self._per_member(
                    self.loss.d_targets,
                    real_out,
                    fake_out,
                    real_target,
                    fake_target,
                    self.loss_state,
                )
            else:
                d_loss = self._per_member(self.loss.d, real_out, fake_out, self.loss_state)
            if self.lam is not None:
                outputs = self.discriminator
                if y is not None:  # differentiated with respect to the points only
                    outputs = partial(_with_labels, self.discriminator, y)
                penalty = self.penalty(outputs, real, fake, self.streams.uniform)
                d_loss = d_loss + self.lam * penalty
        return d_loss

    def _g_step(
        self, z: Tensor, real: Tensor, z_labels: Tensor | None = None, labels: Tensor | None = None
    ) -> Tensor:
        with self.autocast:
            fake_out = self._d(self._g(z, z_labels), z_labels).to(self.dtype)
            if self.loss.g_needs_real:  # relativistic: D's outputs on the step's real batch too
                real_out = self._d(real, labels).to(self.dtype)
                return self._per_member(self.loss.g, fake_out, self.loss_state, real_out)
            return self._per_member(self.loss.g, fake_out, self.loss_state)

    def train_step(self) -> None:
        """One step of the reference loop for every member: a D update on one real batch and
        one z; a G update on the schedule's steps (with the same z and real batch, or fresh
        ones where the trial says so); then the loss's end-of-step state update (BEGAN's k),
        with the updated networks. The step runs as one compiled program where the trial asks
        for it (benchmark/training/compiled.py), else op by op."""
        g_step = is_g_step(self.step, self.trial.n_disc)
        self.d_opt.advance()
        if g_step:
            self.g_opt.advance()
        if self.program is not None:
            d_loss, g_loss = self.program.run(g_step)
        else:
            d_loss, g_loss = self.update(g_step)
        self._track(d_loss, "d_loss")
        if g_step:
            self._track(g_loss, "g_loss")
            self.g_steps += 1
        self.step += 1

    def update(self, g_step: bool) -> tuple[Tensor, Tensor | None]:
        """The step's arithmetic, in place on the networks, optimisers and loss state, its
        random numbers drawn through `self.streams`; returns the D and G losses (M,). The
        members' losses are summed for one gradient: the sum's gradient with respect to
        member i's weights is member i's own gradient."""
        trial = self.trial
        real, labels = self._real()
        z = self.sample_z()
        z_labels = labels  # the D update's fakes take the real batch's labels (see _d_step)
        d_loss = self._d_step(real, z, labels)
        (grad,) = torch.autograd.grad(d_loss.sum(), self.discriminator.flat)
        self.d_opt.step(grad)
        if self.clip is not None:
            self.discriminator.clamp_(self.clip)
        g_loss = None
        if g_step:
            # What G sees is its model's choice (the preset's), drawn z first.
            if trial.resample_z_for_g:
                z = self.sample_z()
                if self.conditional:  # a fresh z comes with a fresh label
                    z_labels = self.sample_labels()
            if trial.resample_real_for_g:
                real, labels = self._real()
            # D's parameters need no gradient in the G step; this saves its weight gradients.
            self.discriminator.requires_grad_(False)
            try:
                g_loss = self._g_step(z, real, z_labels, labels)
                (grad,) = torch.autograd.grad(g_loss.sum(), self.generator.flat)
            finally:
                self.discriminator.requires_grad_(True)
            self.g_opt.step(grad)
            g_loss = g_loss.detach()
        if self.loss.after_step is not None:
            # The reference runs this in training mode, so batch norm's running statistics
            # move here too (TF updates them on every training-mode forward pass).
            with torch.no_grad(), self.autocast:
                real_out = self._d(real, labels).to(self.dtype)
                fake_out = self._d(self._g(z, z_labels), z_labels).to(self.dtype)
            self.loss_state = self._per_member(
                self.loss.after_step, self.loss_state, real_out, fake_out, self.hparams
            )
        return d_loss.detach(), g_loss

    def _track(self, loss: Tensor, name: str) -> None:
        """Keep the latest losses and, on the device (no sync), each member's first step with
        a non-finite loss."""
        loss = loss.detach()
        self.last[name] = loss
        finite = torch.isfinite(loss)
        first = self.finite & ~finite
        self.diverged_at = torch.where(first, self.step + 1, self.diverged_at)
        self.finite &= finite

    def losses(self) -> list[dict[str, float]]:
        """Host copies of each member's latest losses and loss state (one device sync)."""
        columns = {name: value.tolist() for name, value in self.last.items()}
        columns.update({name: value.tolist() for name, value in self.loss_state.items()})
        return [
            {name: float(values[i]) for name, values in columns.items()} for i in range(self.size)
        ]

    def member_state(self, i: int) -> dict[str, Any]:
        """Member i's training state: what its trial alone would checkpoint."""
        return {
            "step": self.step,
            "g_steps": self.g_steps,
            "g": self.generator.member_state(i),
            "d": self.discriminator.member_state(i),
            "g_opt": self.g_opt.member_state(i),
            "d_opt": self.d_opt.member_state(i),
            "loss_state": {name: value[i].clone() for name, value in self.loss_state.items()},
            "rng": self.streams.generators[i].get_state(),
        }

    def load_member_state(self, i: int, state: dict[str, Any]) -> None:
        """Member i resumes from its checkpoint (every member must be at the same step)."""
        self.step, self.g_steps = state["step"], state["g_steps"]
        self.generator.load_member_state(i, state["g"])
        self.discriminator.load_member_state(i, state["d"])
        self.g_opt.load_member_state(i, state["g_opt"])
        self.d_opt.load_member_state(i, state["d_opt"])
        with torch.no_grad():
            for name, value in state["loss_state"].items():
                self.loss_state[name][i] = value.to(self.device)
        self.streams.generators[i].set_state(state["rng"])

    # The single-trial interface of a population of one.
    def state_dict(self) -> dict[str, Any]:
        return self.member_state(0)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.load_member_state(0, state)
