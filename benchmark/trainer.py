"""`run_population` / `run_trial`: train GANs under a D-step budget, checkpoint, evaluate,
record each trial's result.

The one idempotent entry point for all work on trials (executors only decide where they
run and which trials train together): a trial whose result.json exists is returned as it
is; one with a checkpoint resumes from it and ends with the same weights as an
uninterrupted run (a checkpoint carries its sha256; a damaged one restarts the trial from
step 0, and says so); one whose stored trial.json differs from the planned config is
refused. Trials that share their structure (`population_key`) train as one population
(`GANTraining`, benchmark/stacked.py), each member the trial it is alone: the same draws in
the same order, the same arithmetic up to the rounding of batched kernels (which Adam's first
step amplifies in float32; README, "Populations"); a single trial is a population of one, so
there is one training step.

The step follows the reference code (benchmark/schedule.py, DESIGN.md): every step draws
one real batch and one z and updates D; G is updated at steps 0, 1, 1 + n_disc, ... with
the same z, or a fresh one where the trial says so (`resample_z_for_g`: WGAN-GP, and the
newer models as their sources do); a relativistic G loss also sees D on a real batch, the
step's or a fresh one (`resample_real_for_g`); a loss's end-of-step update (BEGAN's k) sees
the updated networks. The dataset lives on the device as one uint8 tensor and batches are
drawn by index. Losses are read back to the host only every LOG_EVERY steps, so the step
itself never waits for the device.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import platform
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.func import vmap

import benchmark
from benchmark import interrupt
from benchmark.conditional import conditional_networks
from benchmark.config import TrialConfig
from benchmark.datasets import DATASETS, ImageData
from benchmark.errors import ConfigError, DamagedFile, TrialMismatch, WriteFailed
from benchmark.files import (
    atomic_write,
    check_writable_dir,
    commit_writes,
    read_json,
    read_record,
    remove_stale_temporaries,
    stage_write,
    write_json,
)
from benchmark.latents import LATENTS
from benchmark.losses import LOSSES, discriminator_targets
from benchmark.memory import keep_freed_memory
from benchmark.networks import DISCRIMINATORS, GENERATORS, NetworkOptions
from benchmark.penalties import PENALTIES
from benchmark.progress import progress_bar
from benchmark.schedule import is_g_step, trial_schedule
from benchmark.stacked import MemberStreams, StackedAdam, StackedNetwork

LOG_EVERY = 50
SAMPLE_GRID = 64


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(name: str | torch.device | None) -> torch.device:
    """The torch device `name` (None or "auto": cuda if available, else cpu), or ConfigError if
    this machine cannot run on it; checked before anything is written."""
    if name is None or name == "auto":
        return default_device()
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError("device", name, "a torch device: cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError("device", name, "cpu (this machine has no usable CUDA GPU)")
        if device.index is not None and device.index >= count:
            raise ConfigError("device", name, f"cuda or cuda:0 .. cuda:{count - 1}")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError("device", name, "cpu (MPS is not available here)")
    elif device.type != "cpu":
        raise ConfigError("device", name, "cpu, cuda or cuda:N")
    return device


def uniform_z(n: int, z_dim: int, rng: torch.Generator, device: torch.device) -> Tensor:
    """z ~ U[-1, 1]^z_dim, as in the reference study."""
    return torch.rand(n, z_dim, generator=rng, device=device) * 2 - 1


def build_networks(
    trial: TrialConfig, shape: tuple[int, ...], device: torch.device
) -> tuple[nn.Module, nn.Module]:
    """G and D of a trial, initialised from its seed (the same weights on every run); for a
    conditional trial G(z, y) and D(x, y) (benchmark/conditional.py)."""
    torch.manual_seed(trial.seed)
    opts = NetworkOptions(
        shape=shape,
        z_dim=trial.z_dim,
        d_bn=trial.d_bn,
        spectral_norm=trial.spectral_norm,
        bn_momentum=trial.bn_momentum,
    )
    g_factory = GENERATORS.get(trial.generator)
    d_factory = DISCRIMINATORS.get(trial.discriminator)
    if trial.conditional:
        classes = DATASETS.get(trial.dataset).classes
        g, d = conditional_networks(g_factory, d_factory, opts, classes, trial.conditioning)
        return g.to(device), d.to(device)
    g = g_factory(opts).to(device)
    d = d_factory(opts).to(device)
    return g, d


# What members of one population may differ in: numbers the step reads from per-member
# tensors, the seed (own initial weights and random streams) and the sweep's book-keeping.
# Everything else is structure that every member shares.
MEMBER_FIELDS = ("lr", "beta1", "beta2", "clip", "lam", "lambda_k", "gamma", "seed")
BOOKKEEPING_FIELDS = ("sweep", "phase", "sample", "seed_role", "extra")
# Options the member-batched layers lack (benchmark/stacked_layers.py): spectral norm's
# parametrization; compile and channels_last tune one network's kernels. Such a trial trains
# alone and calls its networks' own modules.
SOLO_OPTIONS = ("spectral_norm", "compile", "channels_last")


def population_key(trial: TrialConfig) -> str:
    """Trials with equal keys can train together as one population."""
    record = trial.to_dict()
    if any(record[name] for name in SOLO_OPTIONS):
        return f"solo:{trial.trial_id}"
    for name in BOOKKEEPING_FIELDS:
        del record[name]
    for name in MEMBER_FIELDS:  # whether a value is set is structure (e.g. clipping at all)
        record[name] = record[name] is not None
    return json.dumps(record, sort_keys=True)


def _with_labels(outputs: Callable[..., Tensor], labels: Tensor, points: Tensor) -> Tensor:
    """A conditional D's outputs at `points` with the labels fixed: a function of the points."""
    return outputs(points, labels)


def _map(function: Callable[[Tensor], Tensor], value: Tensor | dict[str, Tensor]):
    """`function` on a tensor, or on each tensor of a dict (a loss state)."""
    if isinstance(value, dict):
        return {name: function(t) for name, t in value.items()}
    return function(value)


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
        compile_mode: str | None = None,
        train_labels: Tensor | None = None,
    ) -> None:
        """`compile_mode` is torch.compile's mode when `trial.compile` is set ("reduce-overhead"
        adds CUDA graphs on a GPU); `run_trial` leaves it at the default. `train_labels`
        (int64 (N,)) are the images' classes, which a conditional trial needs."""
        keep_freed_memory()  # large tensors are not faulted in on every step (benchmark/memory.py)
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
        plain = any(getattr(trial, name) for name in SOLO_OPTIONS)
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
        # The networks' forward passes are compiled, not the step: the penalties need a double
        # backward, which compiled graphs do not support, so they run D eagerly.
        if trial.compile:
            self.generator.compile(compile_mode)
            self.discriminator.compile(compile_mode)
        self.cuda_graphs = trial.compile and compile_mode == "reduce-overhead"

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
        """(M, B) training-set indices, uniform with replacement, from each member's stream."""
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
        """(M, B, z_dim), each member's z from its own stream."""
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
                outputs = self.discriminator.eager
                if y is not None:  # differentiated with respect to the points only
                    outputs = partial(_with_labels, self.discriminator.eager, y)
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
        with the updated networks. The members' losses are summed for one backward pass: the
        sum's gradient with respect to member i's weights is member i's own gradient."""
        trial = self.trial
        if self.cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()  # the previous step's outputs are done
        real, labels = self._real()
        z = self.sample_z()
        z_labels = labels  # the D update's fakes take the real batch's labels (see _d_step)
        d_loss = self._d_step(real, z, labels)
        self.d_opt.zero_grad()
        d_loss.sum().backward()
        self.d_opt.step()
        if self.clip is not None:
            self.discriminator.clamp_(self.clip)
        self._track(d_loss, "d_loss")
        if is_g_step(self.step, trial.n_disc):
            # What G sees is its model's choice (the preset's), drawn z first.
            if trial.resample_z_for_g:
                z = self.sample_z()
                if self.conditional:  # a fresh z comes with a fresh label
                    z_labels = self.sample_labels()
            if trial.resample_real_for_g:
                real, labels = self._real()
            # D's parameters need no gradient in the G step; this saves its weight gradients.
            self.discriminator.requires_grad_(False)
            g_loss = self._g_step(z, real, z_labels, labels)
            self.g_opt.zero_grad()
            g_loss.sum().backward()
            self.g_opt.step()
            self.discriminator.requires_grad_(True)
            self._track(g_loss, "g_loss")
            self.g_steps += 1
        if self.loss.after_step is not None:
            # The reference runs this in training mode, so batch norm's running statistics
            # move here too (TF updates them on every training-mode forward pass).
            with torch.no_grad(), self.autocast:
                real_out = self._d(real, labels).to(self.dtype)
                fake_out = self._d(self._g(z, z_labels), z_labels).to(self.dtype)
            self.loss_state = self._per_member(
                self.loss.after_step, self.loss_state, real_out, fake_out, self.hparams
            )
        self.step += 1

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


TRIAL_REMEDY = "delete or move its directory to run the trial again"
RESULT_REMEDY = "delete it to run the trial again"


def load_result(path: Path) -> dict[str, Any]:
    """A stored result.json; DamagedFile naming it (and what to do) if it is not a result."""
    return read_record(path, ("trial_id", "status"), RESULT_REMEDY)


def read_trial_record(path: Path) -> dict[str, Any]:
    """A stored trial.json; DamagedFile naming it (and what to do) if it is not a trial."""
    return read_record(path, ("dataset", "model", "loss"), TRIAL_REMEDY)


def read_result(directory: Path, trial: TrialConfig) -> dict[str, Any] | None:
    """The trial's stored result, None if it has none; DamagedFile if it cannot be trusted."""
    path = directory / "result.json"
    if not path.exists():
        return None
    result = load_result(path)
    if result["trial_id"] != trial.trial_id:
        raise DamagedFile(path, f"it is the result of trial {result['trial_id']}", RESULT_REMEDY)
    return result


def check_trial_dir(trial: TrialConfig, directory: Path) -> bool:
    """Whether the directory holds this trial's trial.json; TrialMismatch if it holds another
    trial's, DamagedFile if it is unreadable. Writes nothing."""
    path = directory / "trial.json"
    if not path.exists():
        return False
    stored = read_trial_record(path)
    if stored != trial.to_dict():
        changed = sorted(
            key
            for key in set(stored) | set(trial.to_dict())
            if stored.get(key) != trial.to_dict().get(key)
        )
        raise TrialMismatch(
            "trial.json",
            str(path),
            f"the same config as planned (differs in {', '.join(changed)}); "
            "use another directory or delete it",
        )
    return True


def forget_failure(directory: Path) -> bool:
    """Delete a failed trial's result (and error.log) so that it runs again; whether it did.
    Call it while holding the trial's claim."""
    path = directory / "result.json"
    if not path.exists() or load_result(path).get("status") != "failed":
        return False
    path.unlink()
    (directory / "error.log").unlink(missing_ok=True)
    return True


def remove_leftovers(directory: Path) -> None:
    """What a killed run of this trial left: temporary files of interrupted writes, and the
    checkpoint of a trial whose result is stored. Call it only while holding the trial's claim
    (or when no other process can be writing the directory)."""
    remove_stale_temporaries(directory, everything=True)
    if (directory / "result.json").exists():
        (directory / CHECKPOINT).unlink(missing_ok=True)


CHECKPOINT = "checkpoint.pt"
# A checkpoint file is this magic, the sha256 of the payload (hex) and a newline, then the
# payload (torch.save's bytes); a file that fails the check is never loaded.
_CHECKPOINT_MAGIC = b"ganbench-checkpoint-v1 "


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    _commit_checkpoints([_stage_checkpoint(path, state)])


def _stage_checkpoint(path: Path, state: dict[str, Any]) -> tuple[Path, Path]:
    """Write the checkpoint to a synced temporary file; `_commit_checkpoints` renames it."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getbuffer()
    header = _CHECKPOINT_MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n"

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            handle.write(header)
            handle.write(payload)

    return stage_write(path, write)


def _commit_checkpoints(staged: Sequence[tuple[Path, Path]]) -> None:
    commit_writes(staged)


def _load_checkpoint(path: Path, device: torch.device) -> dict[str, Any] | None:
    """The saved state, or None (with a line on stderr) if the file fails its integrity check:
    the trial then restarts from step 0, which ends with the same weights, only later."""
    data = path.read_bytes()
    header, _, payload = data.partition(b"\n")
    problem = ""
    if not header.startswith(_CHECKPOINT_MAGIC):
        problem = "not a ganbench checkpoint" if data else "empty"
    elif header[len(_CHECKPOINT_MAGIC) :] != hashlib.sha256(payload).hexdigest().encode():
        problem = "sha256 mismatch: truncated or altered"
    if not problem:
        try:
            return torch.load(io.BytesIO(payload), map_location=device, weights_only=True)
        except Exception as error:  # a payload that passed its hash but cannot be unpickled
            problem = f"{type(error).__name__}: {error}"
    print(f"warning: {path}: damaged ({problem}); the trial restarts from step 0", file=sys.stderr)
    path.unlink(missing_ok=True)
    return None


def _save_samples(generator: nn.Module, trial: TrialConfig, device: torch.device, path: Path):
    """samples.png, a grid of 64 images; for points, samples.npz: the points G makes of the
    evaluation's fixed z (the ones the mixture metrics scored), with the mixture's centres."""
    if DATASETS.get(trial.dataset).is_points:
        _save_points(generator, trial, device, path.with_suffix(".npz"))
        return
    from torchvision.utils import save_image

    rng = torch.Generator(device=device)
    rng.manual_seed(0)
    was_training = generator.training
    generator.eval()
    labels, columns = _sample_labels(trial, SAMPLE_GRID), 8
    with torch.inference_mode():
        z = LATENTS.get(trial.latent).sample(SAMPLE_GRID, trial.z_dim, rng, device)
        if labels is None:
            images = generator(z).float().cpu()
        else:  # one column per class: sample i has class i mod K
            images = generator(z, labels.to(device)).float().cpu()
            columns = DATASETS.get(trial.dataset).classes
    generator.train(was_training)
    atomic_write(path, lambda tmp: save_image(images, tmp, nrow=columns, padding=2, format="png"))


def _sample_labels(trial: TrialConfig, n: int) -> Tensor | None:
    """A conditional trial's class-balanced labels for n samples (None: unconditional)."""
    from benchmark.conditional import balanced_labels

    if not trial.conditional:
        return None
    return balanced_labels(n, DATASETS.get(trial.dataset).classes)


def _save_points(generator: nn.Module, trial: TrialConfig, device: torch.device, path: Path):
    import numpy as np

    from benchmark.evaluation import fixed_z
    from benchmark.evaluation.mixture_metrics import HQ_SIGMAS, SAMPLES
    from benchmark.mixtures import MIXTURES

    was_training = generator.training
    generator.eval()
    labels = _sample_labels(trial, SAMPLES)
    with torch.inference_mode():
        z = fixed_z(SAMPLES, trial.z_dim, 0, trial.latent).to(device)
        points = generator(z) if labels is None else generator(z, labels.to(device))
    generator.train(was_training)
    mixture = MIXTURES.get(trial.dataset, "dataset")
    arrays = {
        "points": points.float().cpu().numpy(),
        "centres": mixture.centre_array,
        "hq_radius": np.float64(HQ_SIGMAS * mixture.sigma),
    }
    if labels is not None:  # the modes the points were asked for
        arrays["labels"] = labels.numpy()

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:  # a handle: np.savez would append ".npz"
            np.savez(handle, **arrays)

    atomic_write(path, write)


def _environment(device: torch.device) -> dict[str, Any]:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    return {
        "device": f"{device.type}:{name or platform.machine()}",
        "torch_version": torch.__version__,
        "ganbench_version": benchmark.__version__,
        "host": platform.node(),
        "cpu_threads": torch.get_num_threads(),
    }


def _make_evaluator(
    trial: TrialConfig,
    test_images: Tensor,
    device: torch.device,
    weights,
    download: bool,
    data: ImageData | None = None,
):
    """The trial's evaluator; `data` (the dataset, with its labels) for a conditional trial."""
    if not trial.metrics:
        return None
    from benchmark.evaluation import Evaluator
    from benchmark.evaluation.polygon_metrics import PolygonSettings

    labelled = {}
    if trial.conditional:  # class-balanced samples, scored for label accuracy too
        if data is None or not data.labelled:
            raise ValueError("a conditional trial's evaluator needs the labelled dataset")
        labelled = {
            "classes": DATASETS.get(trial.dataset).classes,
            "test_labels": data.test_labels,
            "train_images": data.train,
            "train_labels": data.train_labels,
        }
    return Evaluator(
        dataset=trial.dataset,
        test_images=test_images,
        metrics=trial.metrics,
        n_real=trial.fid_n_real,
        n_fake=trial.fid_n_fake,
        extractor=trial.feature_extractor,
        weights=weights,
        download=download,
        device=device,
        z_dim=trial.z_dim,
        latent=trial.latent,
        polygon=PolygonSettings(
            n_precision=trial.polygon_n_precision,
            n_recall=trial.polygon_n_recall,
            steps=trial.polygon_steps,
            z_bound=LATENTS.get(trial.latent).bound,
        ),
        **labelled,
    )


def _summarise(evaluations: list[dict[str, Any]], final_reached: bool) -> dict[str, Any]:
    """fid_min over the checkpoints evaluated; fid_final and every other metric at the final
    checkpoint, NaN when the trial stopped before it."""
    summary: dict[str, Any] = {"fid_min": math.nan, "fid_final": math.nan}
    fids = [e["fid"] for e in evaluations if e.get("fid") is not None and math.isfinite(e["fid"])]
    if fids:
        summary["fid_min"] = min(fids)
    if not evaluations:
        return summary
    final = {k: v for k, v in evaluations[-1].items() if k != "d_steps"}
    if not final_reached:  # the same columns, with no value
        final = dict.fromkeys(final, math.nan)
    summary["fid_final"] = final.pop("fid", math.nan)
    summary.update(final)
    return summary


@dataclass
class _Member:
    """One trial of a population while it trains: where it writes and what it has recorded."""

    trial: TrialConfig
    directory: Path
    saved: dict[str, Any] | None = None  # the checkpoint it resumes from
    history: list[dict[str, Any]] = field(default_factory=list)
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0  # its share of the time spent before a resume
    status: str = "ok"
    error: str = ""
    diverged_at: int | None = None
    d_steps: int = 0
    g_steps: int = 0
    population: int = 1  # the size of the population it trained in

    @property
    def step(self) -> int:
        return self.saved["training"]["step"] if self.saved else 0


def run_trial(trial: TrialConfig, directory: str | Path, **options: Any) -> dict[str, Any]:
    """Run (or resume, or return) one trial in `directory`: a population of one
    (`run_population`'s options); returns the result record."""
    return run_population([trial], [directory], **options)[0]


def run_population(
    trials: Sequence[TrialConfig],
    directories: Sequence[str | Path],
    *,
    data_root: str | Path | None = None,
    device: str | torch.device | None = None,
    weights: str | None = None,
    download: bool = False,
    progress: bool = True,
    progress_position: int = 0,
) -> list[dict[str, Any]]:
    """Run (or resume, or return) trials that share their structure (`population_key`) as one
    population, each in its directory; returns their result records in order.

    Each member is the idempotent trial it is alone: a trial whose result.json exists is
    returned as it is; one with a checkpoint resumes from it and ends with the same weights as
    an uninterrupted run (members resuming from different steps train as separate
    populations); one whose stored trial.json differs from the planned config is refused.

    Configuration, device, directory, data, weights and cache errors are raised before
    anything is written or trained (a damaged trial.json or result.json is named, with what
    to do). Call it under every member's claim (`executors.claim`): it tidies what a killed run
    left in the directories. An error during training is recorded as status "failed" with its
    message for every member still training; a member whose loss goes non-finite ends as
    "diverged" while the others go on. Both are results, not crashes. A stop request
    (`interrupt.Interrupted`, checked between steps) and a file that cannot be written
    (`WriteFailed`: a full disk) are not results: they propagate with every member resumable
    from its last complete checkpoint, and nothing is recorded.
    """
    from benchmark.datasets import load_dataset

    if len(trials) != len(directories) or not trials:
        raise ValueError("one directory per trial, and at least one trial")
    if len({population_key(t) for t in trials}) != 1:
        raise ValueError("a population's trials must share every structural field")
    # Everything that can refuse the trials runs before anything is written or trained.
    device = resolve_device(device)
    results: list[dict[str, Any] | None] = [None] * len(trials)
    pending: list[tuple[int, TrialConfig, Path, bool]] = []
    for index, (trial, directory) in enumerate(zip(trials, directories, strict=True)):
        directory = Path(directory)
        check_writable_dir(directory, "out")
        known = check_trial_dir(trial, directory)
        result = read_result(directory, trial)
        if result is None:
            pending.append((index, trial, directory, known))
            continue
        if not known:  # trial.json was deleted; the result names this very trial
            write_json(directory / "trial.json", trial.to_dict())
        remove_leftovers(directory)
        results[index] = result
    if not pending:
        return results
    interrupt.check()  # a stopping process starts no trial
    trial = pending[0][1]
    data = load_dataset(trial.dataset, data_root, download=download)
    if trial.conditional and not data.labelled:
        from benchmark.datasets import DATASETS, DatasetMissing

        raise DatasetMissing(
            f"dataset {trial.dataset!r} has no labels here, which a conditional trial needs: "
            f"{DATASETS.get(trial.dataset).files}"
        )
    # One evaluator for all: the members share dataset and metric settings, so the weights and
    # the real statistics are loaded once.
    evaluator = _make_evaluator(trial, data.test, device, weights, download, data)
    if evaluator is not None:
        evaluator.prepare()  # weights and reference statistics, before any training
    interrupt.check()

    members: dict[int, _Member] = {}
    for index, trial, directory, known in pending:
        directory.mkdir(parents=True, exist_ok=True)
        if not known:
            write_json(directory / "trial.json", trial.to_dict())
        remove_leftovers(directory)
        member = _Member(trial, directory)
        path = directory / CHECKPOINT
        member.saved = _load_checkpoint(path, device) if path.exists() else None
        if member.saved is not None:
            member.history = member.saved["history"]
            member.evaluations = member.saved["evaluations"]
            member.seconds = member.saved["seconds"]
        members[index] = member
    # Members train together only from the same step: a killed population's members all
    # checkpoint at the same steps, so this splits only groups formed differently before.
    by_step: dict[int, list[_Member]] = {}
    for member in members.values():
        by_step.setdefault(member.step, []).append(member)
    for group in by_step.values():
        _train(group, data, device, evaluator, progress, progress_position)
    for index, member in members.items():
        results[index] = _finish(member, device, evaluator)
    return results


def _train(
    members: list[_Member],
    data: ImageData,
    device: torch.device,
    evaluator,
    progress: bool,
    progress_position: int,
) -> None:
    """Train one population to the end of its schedule, recording into its members."""
    trial = members[0].trial
    trials = [m.trial for m in members]
    training = GANTraining(trials, data.train, device, train_labels=data.train_labels)
    for i, member in enumerate(members):
        member.population = len(members)
        if member.saved is not None:
            training.load_member_state(i, member.saved["training"])
        member.saved = None  # the state lives in the population now
    schedule = trial_schedule(trial)
    size = len(members)
    # Each member is charged an equal share of the population's time.
    started = time.perf_counter() - sum(m.seconds for m in members)
    active = list(range(size))  # members still recorded; a diverged one leaves this list
    label = f"{trial.model}/{trial.dataset} " + (
        f"seed {trial.seed}" if size == 1 else f"population of {size}"
    )
    bar = progress_bar(
        schedule.steps,
        label,
        "step",
        initial=training.step,
        enabled=progress,
        position=progress_position,
    )

    def seconds() -> float:
        return (time.perf_counter() - started) / size

    def diverge(i: int, at: int, error: str) -> None:
        # Later checkpoints could only score worse (the reference gives a NaN generator FID
        # 31337), so the member stops; the checkpoints evaluated so far still count.
        member = members[i]
        member.status, member.diverged_at, member.error = "diverged", at, error
        member.d_steps, member.g_steps = training.step, training.g_steps
        member.seconds = seconds()
        active.remove(i)

    try:
        while training.step < schedule.steps and active:
            training.train_step()
            step = training.step
            at_checkpoint = schedule.evaluates_after(step)
            if step % LOG_EVERY == 0 or at_checkpoint:
                bar.update(step - bar.n)
                finite = training.finite.tolist()
                diverged_at = training.diverged_at.tolist()
                # A G update with finite losses can still leave G non-finite; a checkpoint
                # must not keep (or score) such a generator.
                g_finite = training.generator.finite().tolist() if at_checkpoint else [True] * size
                for i in list(active):
                    if not finite[i]:
                        diverge(i, diverged_at[i], f"non-finite loss at D step {diverged_at[i]}")
                    elif not g_finite[i]:
                        diverge(i, step, f"non-finite generator after D step {step}")
                losses = training.losses()
                for i in active:
                    members[i].history.append(
                        {"d_steps": step, "g_steps": training.g_steps, **losses[i]}
                    )
                if size == 1 and active:
                    bar.set_postfix({k: f"{v:.3g}" for k, v in losses[0].items()}, refresh=False)
            if at_checkpoint and active:
                # Every member's checkpoint is staged (written, synced), then all are renamed
                # together: a full disk leaves the members at one step, so that they resume
                # as one population.
                staged: list[tuple[Path, Path]] = []
                for i in list(active):
                    member = members[i]
                    if evaluator is not None:
                        from benchmark.evaluation import NonFiniteGenerator

                        try:
                            scores = evaluator.evaluate(training.generator.member_module(i))
                        except NonFiniteGenerator:  # never scored: it diverged here
                            diverge(i, step, f"non-finite generator output at D step {step}")
                            continue
                        member.evaluations.append({"d_steps": step, **scores})
                    state = {
                        "training": training.member_state(i),
                        "history": member.history,
                        "evaluations": member.evaluations,
                        "seconds": seconds(),
                    }
                    try:
                        staged.append(_stage_checkpoint(member.directory / CHECKPOINT, state))
                    except BaseException:
                        for tmp, _ in staged:
                            tmp.unlink(missing_ok=True)
                        raise
                _commit_checkpoints(staged)
                for i in active:
                    member = members[i]
                    _write_metrics(
                        member.directory / "metrics.jsonl", member.history, member.evaluations
                    )
            # The safe point: between steps, after this step's checkpoints are complete.
            interrupt.check()
    except (KeyboardInterrupt, SystemExit, WriteFailed, *interrupt.STOP_ERRORS):
        raise  # not the trial's doing: every member stays resumable, nothing is recorded
    except Exception as exc:  # recorded, so one broken population does not stop a sweep
        for i in active:
            members[i].status, members[i].error = "failed", f"{type(exc).__name__}: {exc}"
            write_error_log(members[i].directory, traceback.format_exc())
    finally:
        bar.close()
    for i in active:
        member = members[i]
        member.d_steps, member.g_steps, member.seconds = training.step, training.g_steps, seconds()
        if member.status == "ok":
            generator = training.generator.member_module(i)
            _save_samples(generator, member.trial, device, member.directory / "samples.png")
            # The final generator is kept (small); the full checkpoint with D and both Adam
            # states is ~150 MB and only needed to resume, so it goes once the result is stored.
            g_state = generator.state_dict()
            atomic_write(member.directory / "generator.pt", partial(torch.save, g_state))


def write_error_log(directory: Path, text: str) -> None:
    """error.log beside a failed trial's result; a file that cannot be written stops the run
    as any other write does (`WriteFailed`), before the failure is recorded."""
    atomic_write(directory / "error.log", lambda tmp: tmp.write_text(text))


def _finish(member: _Member, device: torch.device, evaluator) -> dict[str, Any]:
    """Write a trained member's result and drop its checkpoint; return the result."""
    trial, directory = member.trial, member.directory
    # A crash is not a measurement: a failed trial scores nothing. A diverged one keeps the
    # checkpoints evaluated before it diverged, as the reference does.
    scored = member.evaluations if member.status != "failed" else []
    summary = _summarise(scored, final_reached=member.status == "ok")
    result = {
        **trial.to_dict(),
        "trial_id": trial.trial_id,
        "status": member.status,
        "error": member.error,
        "diverged_at": member.diverged_at,
        "d_steps": member.d_steps,
        "g_steps": member.g_steps,
        # Real images drawn: one batch per D step, and one per G step where G draws its own.
        "images_seen": (member.d_steps + member.g_steps * trial.resample_real_for_g)
        * trial.batch_size,
        "seconds": member.seconds,  # an equal share of its population's wall time
        "population": member.population,
        **_environment(device),
        **(evaluator.record() if evaluator is not None else {}),
        **summary,
        "checkpoints": member.evaluations,
    }
    path = directory / "result.json"
    write_json(path, result)
    (directory / CHECKPOINT).unlink(missing_ok=True)  # a kill before this leaves a spare file
    return read_json(path)  # the stored form (NaN as null), same as a rerun returns


def _write_metrics(path: Path, history: list[dict], evaluations: list[dict]) -> None:
    import json

    lines = [json.dumps({"kind": "train", **h}) for h in history]
    lines += [json.dumps({"kind": "eval", **e}) for e in evaluations]
    atomic_write(path, lambda tmp: tmp.write_text("\n".join(lines) + "\n"))
