"""`run_trial`: train one GAN under a D-step budget, checkpoint, evaluate, record the result.

The one idempotent entry point for all work on a trial (executors only decide where it
runs): a trial whose result.json exists is returned as it is; one with a checkpoint
resumes from it and ends with the same weights as an uninterrupted run (a checkpoint
carries its sha256; a damaged one restarts the trial from step 0, and says so); one whose
stored trial.json differs from the planned config is refused.

The step follows the reference code (benchmark/schedule.py, DESIGN.md): every step draws
one real batch and one z and updates D; G is updated at steps 0, 1, 1 + n_disc, ... with
the same z (a fresh one for WGAN-GP); a relativistic G loss also sees D on that step's real
batch; a loss's end-of-step update (BEGAN's k) sees the updated networks. The dataset lives
on the device as one uint8 tensor and batches are drawn by index. Losses are read back to
the host only every LOG_EVERY steps, so the step itself never waits for the device.
"""

from __future__ import annotations

import hashlib
import io
import math
import platform
import sys
import time
import traceback
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

import benchmark
from benchmark.config import TrialConfig
from benchmark.io import (
    DamagedFile,
    atomic_write,
    check_writable_dir,
    read_json,
    read_record,
    remove_stale_temporaries,
    write_json,
)
from benchmark.latents import LATENTS
from benchmark.losses import LOSSES, discriminator_targets
from benchmark.networks import DISCRIMINATORS, GENERATORS, NetworkOptions, clip_parameters
from benchmark.penalties import PENALTIES
from benchmark.progress import progress_bar
from benchmark.registry import ConfigError
from benchmark.schedule import is_g_step, trial_schedule

LOG_EVERY = 50
SAMPLE_GRID = 64


class TrialMismatch(ConfigError):
    """The directory holds a different trial than the one planned."""


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(name: str | torch.device | None) -> torch.device:
    """The torch device `name` (default: cuda if available), or ConfigError if this machine
    cannot run on it; checked before anything is written."""
    if name is None:
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
    """G and D of a trial, initialised from its seed (the same weights on every run)."""
    torch.manual_seed(trial.seed)
    opts = NetworkOptions(
        shape=shape,
        z_dim=trial.z_dim,
        d_bn=trial.d_bn,
        spectral_norm=trial.spectral_norm,
        bn_momentum=trial.bn_momentum,
    )
    g = GENERATORS.get(trial.generator)(opts).to(device)
    d = DISCRIMINATORS.get(trial.discriminator)(opts).to(device)
    return g, d


class GANTraining:
    """The networks, optimisers, random state and counters of one trial, and its step."""

    def __init__(
        self,
        trial: TrialConfig,
        train_images: Tensor,
        device: torch.device,
        compile_mode: str | None = None,
    ) -> None:
        """`compile_mode` is torch.compile's mode when `trial.compile` is set ("reduce-overhead"
        adds CUDA graphs on a GPU); `run_trial` leaves it at the default."""
        self.trial, self.device = trial, device
        self.images = train_images.to(device)  # uint8 (N, C, H, W), resident on the device
        self.g, self.d = build_networks(trial, tuple(train_images.shape[1:]), device)
        self.memory_format = torch.channels_last if trial.channels_last else torch.preserve_format
        self.g.to(memory_format=self.memory_format)
        self.d.to(memory_format=self.memory_format)
        # One fused kernel per optimiser step on the GPU; the multi-tensor path on the CPU.
        fused = device.type == "cuda"
        adam = dict(
            lr=trial.lr, betas=(trial.beta1, trial.beta2), eps=1e-8, fused=fused, foreach=not fused
        )
        self.g_opt = torch.optim.Adam(self.g.parameters(), **adam)
        self.d_opt = torch.optim.Adam(self.d.parameters(), **adam)
        self.loss = LOSSES.get(trial.loss)
        self.penalty = PENALTIES.get(trial.penalty)
        self.loss_state = self.loss.initial_state(device)
        self.latent = LATENTS.get(trial.latent)
        # Label smoothing or flipping: D's loss with explicit targets (only losses that have it
        # pass validation).
        self.targets = trial.label_smoothing > 0 or trial.label_flip > 0
        self.rng = torch.Generator(device=device)
        self.rng.manual_seed(trial.seed)
        self.step = 0
        self.g_steps = 0
        self.finite = torch.ones((), dtype=torch.bool, device=device)
        self.diverged_at = torch.zeros((), dtype=torch.long, device=device)  # 0: not diverged
        self.last = {
            "d_loss": torch.zeros((), device=device),
            "g_loss": torch.zeros((), device=device),
        }
        self.autocast = (
            torch.autocast(device.type, dtype=torch.bfloat16)
            if trial.amp_dtype == "bf16"
            else nullcontext()
        )
        # The networks' forward passes are compiled, not the step: the penalties need a double
        # backward, which compiled graphs do not support, so they run D eagerly (self.d).
        self.g_forward, self.d_forward = self.g, self.d
        if trial.compile:
            self.g_forward = torch.compile(self.g, mode=compile_mode)
            self.d_forward = torch.compile(self.d, mode=compile_mode)
        self.cuda_graphs = trial.compile and compile_mode == "reduce-overhead"

    def real_batch(self) -> Tensor:
        index = torch.randint(
            len(self.images), (self.trial.batch_size,), generator=self.rng, device=self.device
        )
        real = self.images[index].float().div_(255)
        return real.contiguous(memory_format=self.memory_format)

    def sample_z(self) -> Tensor:
        return self.latent.sample(self.trial.batch_size, self.trial.z_dim, self.rng, self.device)

    def _d_step(self, real: Tensor, z: Tensor) -> Tensor:
        trial = self.trial
        with self.autocast:
            with torch.no_grad():
                fake = self.g_forward(z)
            real_out, fake_out = self.d_forward(real).float(), self.d_forward(fake).float()
            if self.targets:
                real_target, fake_target = discriminator_targets(
                    real_out, fake_out, trial.label_smoothing, trial.label_flip, self.rng
                )
                d_loss = self.loss.d_targets(
                    real_out, fake_out, real_target, fake_target, self.loss_state
                )
            else:
                d_loss = self.loss.d(real_out, fake_out, self.loss_state)
            if self.trial.lam is not None:
                d_loss = d_loss + self.trial.lam * self.penalty(self.d, real, fake, self.rng)
        return d_loss

    def _g_step(self, z: Tensor, real: Tensor) -> Tensor:
        with self.autocast:
            fake_out = self.d_forward(self.g_forward(z)).float()
            if self.loss.g_needs_real:  # relativistic: D's outputs on the step's real batch too
                return self.loss.g(fake_out, self.loss_state, self.d_forward(real).float())
            return self.loss.g(fake_out, self.loss_state)

    def train_step(self) -> None:
        """One step of the reference loop: a D update on one real batch and one z; a G update
        on the schedule's steps (with the same z, or a fresh one where the trial says so);
        then the loss's end-of-step state update (BEGAN's k), with the updated networks."""
        trial = self.trial
        if self.cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()  # the previous step's outputs are done
        real = self.real_batch()
        z = self.sample_z()
        d_loss = self._d_step(real, z)
        self.d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        self.d_opt.step()
        if trial.clip is not None:
            clip_parameters(self.d, trial.clip)
        self._track(d_loss, "d_loss")
        if is_g_step(self.step, trial.n_disc):
            if trial.resample_z_for_g:
                z = self.sample_z()
            # D's parameters need no gradient in the G step; this saves its weight gradients.
            self.d.requires_grad_(False)
            g_loss = self._g_step(z, real)
            self.g_opt.zero_grad(set_to_none=True)
            g_loss.backward()
            self.g_opt.step()
            self.d.requires_grad_(True)
            self._track(g_loss, "g_loss")
            self.g_steps += 1
        if self.loss.after_step is not None:
            # The reference runs this in training mode, so batch norm's running statistics
            # move here too (TF updates them on every training-mode forward pass).
            with torch.no_grad(), self.autocast:
                real_out = self.d_forward(real).float()
                fake_out = self.d_forward(self.g_forward(z)).float()
            self.loss_state = self.loss.after_step(self.loss_state, real_out, fake_out, trial)
        self.step += 1

    def _track(self, loss: Tensor, name: str) -> None:
        """Keep the latest loss and, on the device (no sync), the first step it was not finite."""
        loss = loss.detach()
        self.last[name] = loss
        finite = torch.isfinite(loss)
        first = self.finite & ~finite
        self.diverged_at = torch.where(first, self.step + 1, self.diverged_at)
        self.finite &= finite

    def losses(self) -> dict[str, float]:
        """Host copies of the latest losses and loss state (one device sync)."""
        values = {name: float(value) for name, value in self.last.items()}
        values.update({name: float(value) for name, value in self.loss_state.items()})
        return values

    def state_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "g_steps": self.g_steps,
            "g": self.g.state_dict(),
            "d": self.d.state_dict(),
            "g_opt": self.g_opt.state_dict(),
            "d_opt": self.d_opt.state_dict(),
            "loss_state": dict(self.loss_state),
            "rng": self.rng.get_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step, self.g_steps = state["step"], state["g_steps"]
        self.g.load_state_dict(state["g"])
        self.d.load_state_dict(state["d"])
        self.g_opt.load_state_dict(state["g_opt"])
        self.d_opt.load_state_dict(state["d_opt"])
        self.loss_state = {k: v.to(self.device) for k, v in state["loss_state"].items()}
        self.rng.set_state(state["rng"])


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
    buffer = io.BytesIO()
    torch.save(state, buffer)
    payload = buffer.getbuffer()
    header = _CHECKPOINT_MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n"

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:
            handle.write(header)
            handle.write(payload)

    atomic_write(path, write)


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
    from torchvision.utils import save_image

    rng = torch.Generator(device=device)
    rng.manual_seed(0)
    was_training = generator.training
    generator.eval()
    with torch.inference_mode():
        z = LATENTS.get(trial.latent).sample(SAMPLE_GRID, trial.z_dim, rng, device)
        images = generator(z).float().cpu()
    generator.train(was_training)
    atomic_write(path, lambda tmp: save_image(images, tmp, nrow=8, padding=2, format="png"))


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
    trial: TrialConfig, test_images: Tensor, device: torch.device, weights, download: bool
):
    if not trial.metrics:
        return None
    from benchmark.evaluation import Evaluator
    from benchmark.evaluation.polygon_metrics import PolygonSettings

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


def run_trial(
    trial: TrialConfig,
    directory: str | Path,
    *,
    data_root: str | Path | None = None,
    device: str | torch.device | None = None,
    weights: str | None = None,
    download: bool = False,
    progress: bool = True,
    progress_position: int = 0,
) -> dict[str, Any]:
    """Run (or resume, or return) one trial in `directory`; returns the result record.

    Configuration, device, directory, data, weights and cache errors are raised before
    anything is written or trained (a damaged trial.json or result.json is named, with
    what to do). Call it under the trial's claim (`executors.claim`): it tidies what a
    killed run left in the directory. An error during
    training is recorded as status "failed" with its message; a non-finite loss ends
    the trial as "diverged". Both are results, not crashes.
    """
    from benchmark.datasets import load_dataset

    # Everything that can refuse the trial runs before anything is written or trained.
    directory = Path(directory)
    device = resolve_device(device)
    check_writable_dir(directory, "out")
    known = check_trial_dir(trial, directory)
    result = read_result(directory, trial)
    if result is not None:
        if not known:  # trial.json was deleted; the result names this very trial
            write_json(directory / "trial.json", trial.to_dict())
        remove_leftovers(directory)
        return result
    data = load_dataset(trial.dataset, data_root, download=download)
    evaluator = _make_evaluator(trial, data.test, device, weights, download)
    if evaluator is not None:
        evaluator.prepare()  # weights and reference statistics, before any training

    directory.mkdir(parents=True, exist_ok=True)
    if not known:
        write_json(directory / "trial.json", trial.to_dict())
    remove_leftovers(directory)
    result_path = directory / "result.json"
    training = GANTraining(trial, data.train, device)
    checkpoint_path = directory / CHECKPOINT
    history: list[dict[str, Any]] = []
    evaluations: list[dict[str, Any]] = []
    seconds = 0.0
    saved = _load_checkpoint(checkpoint_path, device) if checkpoint_path.exists() else None
    if saved is not None:
        training.load_state_dict(saved["training"])
        history, evaluations, seconds = saved["history"], saved["evaluations"], saved["seconds"]

    status, error, diverged_at = "ok", "", None
    schedule = trial_schedule(trial)
    started = time.perf_counter() - seconds
    bar = progress_bar(
        schedule.steps,
        f"{trial.model}/{trial.dataset} seed {trial.seed}",
        "step",
        initial=training.step,
        enabled=progress,
        position=progress_position,
    )
    try:
        while training.step < schedule.steps:
            training.train_step()
            step = training.step
            at_checkpoint = schedule.evaluates_after(step)
            if step % LOG_EVERY == 0 or at_checkpoint:
                bar.update(step - bar.n)
                if not bool(training.finite):
                    # Later checkpoints could only score worse (the reference gives a NaN
                    # generator FID 31337), so stop; the ones evaluated so far still count.
                    diverged_at = int(training.diverged_at)
                    status, error = "diverged", f"non-finite loss at D step {diverged_at}"
                    break
                losses = training.losses()
                history.append({"d_steps": step, "g_steps": training.g_steps, **losses})
                bar.set_postfix({k: f"{v:.3g}" for k, v in losses.items()}, refresh=False)
            if at_checkpoint:
                if evaluator is not None:
                    evaluations.append({"d_steps": step, **evaluator.evaluate(training.g)})
                state = {
                    "training": training.state_dict(),
                    "history": history,
                    "evaluations": evaluations,
                    "seconds": time.perf_counter() - started,
                }
                _save_checkpoint(checkpoint_path, state)
                _write_metrics(directory / "metrics.jsonl", history, evaluations)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # recorded, so one broken trial does not stop a sweep
        status, error = "failed", f"{type(exc).__name__}: {exc}"
        (directory / "error.log").write_text(traceback.format_exc())
    finally:
        bar.close()

    if status == "ok":
        _save_samples(training.g, trial, device, directory / "samples.png")
        # The final generator is kept (small); the full checkpoint with D and both Adam
        # states is ~150 MB and only needed to resume, so it goes once the result is stored.
        g_state = training.g.state_dict()
        atomic_write(directory / "generator.pt", lambda tmp: torch.save(g_state, tmp))
    # A crash is not a measurement: a failed trial scores nothing. A diverged one keeps the
    # checkpoints evaluated before it diverged, as the reference does.
    scored = evaluations if status != "failed" else []
    summary = _summarise(scored, final_reached=status == "ok")
    result = {
        **trial.to_dict(),
        "trial_id": trial.trial_id,
        "status": status,
        "error": error,
        "diverged_at": diverged_at,
        "d_steps": training.step,
        "g_steps": training.g_steps,
        "images_seen": training.step * trial.batch_size,
        "seconds": time.perf_counter() - started,
        **_environment(device),
        **(evaluator.record() if evaluator is not None else {}),
        **summary,
        "checkpoints": evaluations,
    }
    write_json(result_path, result)
    checkpoint_path.unlink(missing_ok=True)  # a kill before this line leaves only a spare file
    return read_json(result_path)  # the stored form (NaN as null), same as a rerun returns


def _write_metrics(path: Path, history: list[dict], evaluations: list[dict]) -> None:
    import json

    lines = [json.dumps({"kind": "train", **h}) for h in history]
    lines += [json.dumps({"kind": "eval", **e}) for e in evaluations]
    atomic_write(path, lambda tmp: tmp.write_text("\n".join(lines) + "\n"))
