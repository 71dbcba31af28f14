"""`run_population` / `run_trial`: train GANs under a D-step budget, checkpoint, evaluate,
record each trial's result.

The one idempotent entry point for all work on trials (executors only decide where they
run and which trials train together): a trial whose result.json exists is returned as it
is; one with a checkpoint resumes from it and ends with the same weights as an
uninterrupted run (a checkpoint carries its sha256; a damaged one restarts the trial from
step 0, and says so); one whose stored trial.json differs from the planned config is
refused. Trials that share their structure (`population_key`) train as one population
(`GANTraining`, benchmark/training/stacked.py), each member the trial it is alone: the same draws in
the same order, the same arithmetic up to the rounding of batched kernels (which Adam's first
step amplifies in float32; docs/populations.md); a single trial is a population of one, so
there is one training step.

The step follows the reference code (benchmark/schedule.py, docs/fidelity.md): every step draws
one real batch and one z and updates D; G is updated at steps 0, 1, 1 + n_disc, ... with
the same z, or a fresh one where the trial says so (`resample_z_for_g`: WGAN-GP, and the
newer models as their sources do); a relativistic G loss also sees D on a real batch, the
step's or a fresh one (`resample_real_for_g`); a loss's end-of-step update (BEGAN's k) sees
the updated networks. The dataset lives on the device as one uint8 tensor and batches are
drawn by index. Losses are read back to the host only every LOG_EVERY steps, so the step
itself never waits for the device.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from benchmark import interrupt
from benchmark.config import TrialConfig
from benchmark.data_kinds import DATA_KINDS
from benchmark.datasets import DATASETS, ImageData
from benchmark.errors import WriteFailed
from benchmark.files import (
    atomic_write,
    check_writable_dir,
    read_json,
    write_json,
)
from benchmark.latents import LATENTS
from benchmark.progress import progress_bar
from benchmark.results import DIVERGED, FAILED, OK, RESULT, summarise
from benchmark.schedule import trial_schedule
from benchmark.training.devices import environment, resolve_device
from benchmark.training.flops import FlopCount, step_flops
from benchmark.training.population import population_key
from benchmark.training.step import LOG_EVERY, GANTraining
from benchmark.training.trial_dir import (
    CHECKPOINT,
    GENERATOR,
    METRICS_LOG,
    TRIAL_RECORD,
    check_trial_dir,
    commit_checkpoints,
    load_checkpoint,
    read_result,
    remove_leftovers,
    stage_checkpoint,
    write_error_log,
    write_metrics,
)


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


@dataclass
class _Member:
    """One trial of a population while it trains: where it writes and what it has recorded."""

    trial: TrialConfig
    directory: Path
    saved: dict[str, Any] | None = None  # the checkpoint it resumes from
    history: list[dict[str, Any]] = field(default_factory=list)
    evaluations: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0  # its share of the time spent before a resume
    eval_flops: int = 0  # FLOPs of its evaluations so far (benchmark/training/flops.py)
    status: str = OK
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
            write_json(directory / TRIAL_RECORD, trial.to_dict())
        remove_leftovers(directory)
        results[index] = result
    if not pending:
        return results
    interrupt.check()  # a stopping process starts no trial
    trial = pending[0][1]
    data = load_dataset(trial.dataset, data_root, download=download)
    if trial.conditional and not data.labelled:  # a sweep's preflight refuses this sooner
        from benchmark.datasets import DATASETS, DatasetMissing, check_data

        check_data(trial.dataset, data_root, labels=True, download=False)  # names the files
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
            write_json(directory / TRIAL_RECORD, trial.to_dict())
        remove_leftovers(directory)
        member = _Member(trial, directory)
        path = directory / CHECKPOINT
        member.saved = load_checkpoint(path, device) if path.exists() else None
        if member.saved is not None:
            member.history = member.saved["history"]
            member.evaluations = member.saved["evaluations"]
            member.seconds = member.saved["seconds"]
            member.eval_flops = member.saved.get("eval_flops", 0)
        members[index] = member
    # Members train together only from the same step: a killed population's members all
    # checkpoint at the same steps, so this splits only groups formed differently before.
    by_step: dict[int, list[_Member]] = {}
    for member in members.values():
        by_step.setdefault(member.step, []).append(member)
    for group in by_step.values():
        _PopulationRun(group, data, device, evaluator, progress, progress_position).train()
    for index, member in members.items():
        results[index] = _finish(member, device, evaluator)
    return results


class _PopulationRun:
    """One population while it trains (`train`): its step, its members still recorded, its
    progress."""

    def __init__(
        self,
        members: list[_Member],
        data: ImageData,
        device: torch.device,
        evaluator,
        progress: bool,
        progress_position: int,
    ) -> None:
        trial = members[0].trial
        self.members, self.device, self.evaluator = members, device, evaluator
        self.training = GANTraining(
            [m.trial for m in members], data.train, device, train_labels=data.train_labels
        )
        for i, member in enumerate(members):
            member.population = len(members)
            if member.saved is not None:
                self.training.load_member_state(i, member.saved["training"])
            member.saved = None  # the state lives in the population now
        self.size = len(members)
        # Each member is charged an equal share of the population's time.
        self.started = time.perf_counter() - sum(m.seconds for m in members)
        self.active = list(range(self.size))  # a diverged member leaves this list
        label = f"{trial.model}/{trial.dataset} " + (
            f"seed {trial.seed}" if self.size == 1 else f"population of {self.size}"
        )
        self.bar = progress_bar(
            trial_schedule(trial).steps,
            label,
            "step",
            initial=self.training.step,
            enabled=progress,
            position=progress_position,
        )
        self.kind = DATA_KINDS.get(DATASETS.get(trial.dataset).kind)

    def train(self) -> None:
        """Train to the end of the schedule, recording into the members."""
        schedule = trial_schedule(self.members[0].trial)
        try:
            while self.training.step < schedule.steps and self.active:
                self.training.train_step()
                step = self.training.step
                at_checkpoint = schedule.evaluates_after(step)
                if step % LOG_EVERY == 0 or at_checkpoint:
                    self.watch(step, at_checkpoint)
                if at_checkpoint and self.active:
                    self.checkpoint(step)
                interrupt.check()  # the safe point: between steps, after this step's checkpoints
        except (KeyboardInterrupt, SystemExit, WriteFailed, *interrupt.STOP_ERRORS):
            raise  # not the trial's doing: every member stays resumable, nothing is recorded
        except Exception as exc:  # recorded, so one broken population does not stop a sweep
            self.fail(exc)
        finally:
            self.bar.close()
        self.finish()

    def seconds(self) -> float:
        return (time.perf_counter() - self.started) / self.size

    def diverge(self, i: int, at: int, error: str) -> None:
        # Later checkpoints could only score worse (the reference gives a NaN generator FID
        # 31337), so the member stops; the checkpoints evaluated so far still count.
        member = self.members[i]
        member.status, member.diverged_at, member.error = DIVERGED, at, error
        member.d_steps, member.g_steps = self.training.step, self.training.g_steps
        member.seconds = self.seconds()
        self.active.remove(i)

    def watch(self, step: int, at_checkpoint: bool) -> None:
        """Read the losses back: stop the members that diverged, log the others'."""
        training = self.training
        self.bar.update(step - self.bar.n)
        finite = training.finite.tolist()
        diverged_at = training.diverged_at.tolist()
        # A G update with finite losses can still leave G non-finite; a checkpoint must not
        # keep (or score) such a generator.
        g_finite = training.generator.finite().tolist() if at_checkpoint else [True] * self.size
        for i in list(self.active):
            if not finite[i]:
                self.diverge(i, diverged_at[i], f"non-finite loss at D step {diverged_at[i]}")
            elif not g_finite[i]:
                self.diverge(i, step, f"non-finite generator after D step {step}")
        losses = training.losses()
        for i in self.active:
            record = {"d_steps": step, "g_steps": training.g_steps, **losses[i]}
            self.members[i].history.append(record)
        if self.size == 1 and self.active:
            self.bar.set_postfix({k: f"{v:.3g}" for k, v in losses[0].items()}, refresh=False)

    def checkpoint(self, step: int) -> None:
        """Evaluate every active member and checkpoint it. Every member's checkpoint is staged
        (written, synced), then all are renamed together: a full disk leaves the members at
        one step, so that they resume as one population."""
        staged: list[tuple[Path, Path]] = []
        for i in list(self.active):
            member = self.members[i]
            if self.evaluator is not None and not self._evaluate(i, step):
                continue
            state = {
                "training": self.training.member_state(i),
                "history": member.history,
                "evaluations": member.evaluations,
                "seconds": self.seconds(),
                "eval_flops": member.eval_flops,
            }
            try:
                staged.append(stage_checkpoint(member.directory / CHECKPOINT, state))
            except BaseException:
                for tmp, _ in staged:
                    tmp.unlink(missing_ok=True)
                raise
        commit_checkpoints(staged)
        for i in self.active:
            member = self.members[i]
            write_metrics(member.directory / METRICS_LOG, member.history, member.evaluations)

    def _evaluate(self, i: int, step: int) -> bool:
        """Score member i's generator; False when its output is non-finite (it diverged)."""
        from benchmark.evaluation import NonFiniteGenerator

        member = self.members[i]
        try:
            with FlopCount() as counter:
                scores = self.evaluator.evaluate(self.training.generator.member_module(i))
            member.eval_flops += counter.total
        except NonFiniteGenerator:  # never scored: it diverged here
            self.diverge(i, step, f"non-finite generator output at D step {step}")
            return False
        member.evaluations.append({"d_steps": step, **scores})
        return True

    def fail(self, exc: Exception) -> None:
        for i in self.active:
            member = self.members[i]
            member.status, member.error = FAILED, f"{type(exc).__name__}: {exc}"
            write_error_log(member.directory, traceback.format_exc())

    def finish(self) -> None:
        """Record the members still active; keep what a finished one's generator makes."""
        training = self.training
        for i in self.active:
            member = self.members[i]
            member.d_steps, member.g_steps = training.step, training.g_steps
            member.seconds = self.seconds()
            if member.status == OK:
                generator = training.generator.member_module(i)
                self.kind.save(generator, member.trial, self.device, member.directory)
                # The final generator is kept (small); the full checkpoint with D and both
                # Adam states is ~150 MB and only needed to resume, so it goes once the
                # result is stored.
                g_state = generator.state_dict()
                atomic_write(member.directory / GENERATOR, partial(torch.save, g_state))


def _flops(member: _Member) -> dict[str, int | None]:
    """The trial's counted compute (benchmark/training/flops.py), the same on every run."""
    try:
        train = step_flops(member.trial).training(member.d_steps, member.g_steps)
    except Exception:
        if member.status != FAILED:
            raise
        # Counting runs the trial's step, which may be what failed: nothing to count with.
        return {"train_flops": None, "eval_flops": member.eval_flops, "flops": None}
    evaluation = member.eval_flops
    return {"train_flops": train, "eval_flops": evaluation, "flops": train + evaluation}


def _finish(member: _Member, device: torch.device, evaluator) -> dict[str, Any]:
    """Write a trained member's result and drop its checkpoint; return the result."""
    trial, directory = member.trial, member.directory
    # A crash is not a measurement: a failed trial scores nothing. A diverged one keeps the
    # checkpoints evaluated before it diverged, as the reference does.
    scored = member.evaluations if member.status != FAILED else []
    summary = summarise(scored, final_reached=member.status == OK)
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
        **_flops(member),
        "population": member.population,
        **environment(device),
        **(evaluator.record() if evaluator is not None else {}),
        **summary,
        "checkpoints": member.evaluations,
    }
    path = directory / RESULT
    write_json(path, result)
    (directory / CHECKPOINT).unlink(missing_ok=True)  # a kill before this leaves a spare file
    return read_json(path)  # the stored form (NaN as null), same as a rerun returns
