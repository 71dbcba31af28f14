"""The parts of one gpu-check run (benchmark/gpu_check), in order, each within its budget."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

from benchmark.config import TrialConfig
from benchmark.datasets import load_dataset
from benchmark.evaluation import ENV_INCEPTION, Evaluator, build_extractor
from benchmark.gpu_check import (
    CHILD_START_S,
    TINY_DATASET,
    _device_record,
    budgets,
)
from benchmark.gpu_check.checks import (
    Clock,
    check_devices,
    check_features,
    check_population,
    measure_precision,
    measure_steps,
    train_generator,
)
from benchmark.gpu_check.report import Summary
from benchmark.gpu_check.study import plan_seeds, run_study
from benchmark.models import MODELS, PAPER_MODELS, resolve_trial
from benchmark.networks import FAMILIES
from benchmark.perf.bench import frechet_seconds
from benchmark.training.devices import resolve_device

# Study time of populations in parallel processes on one device over the sum of their
# times alone: an assumption (see study()).
PARALLEL_SPEEDUP = {"cpu": 1.0, "cuda": 2.0}
# The ring part's least time to be worth starting: a measurement (with compiling, on a GPU)
# and a child process's start.
RING_LEAST_S = {"tiny": 12.0, "cpu": 30.0, "cuda": 90.0}
# The exit code when the watchdog ends an item that overran the time limit (as `timeout`).
STOPPED_BY_WATCHDOG = 124
# Sizes of the two modes. Full: the paper's MNIST setting on the device; tiny: the MLP
# networks on a generated 28x28 set, every part on the CPU in seconds.
FULL = {
    "batch_size": 64,
    "equivalence_steps": 3,
    "population_members": 3,
    "feature_images": 256,
    "sizes": {"1": 1, "16": 16, "64": 64},
    "seconds": 1.0,
    "fid_images": 10_000,
    "fid_batch": 500,
    "generator_steps": 1000,
    "z_seeds": 3,
    "max_seeds": 64,
}
TINY = {
    "batch_size": 16,
    "equivalence_steps": 3,
    "population_members": 2,
    "feature_images": 64,
    "sizes": {"1": 1, "4": 4},
    "seconds": 0.2,
    "fid_images": 256,
    "fid_batch": 64,
    "generator_steps": 20,
    "z_seeds": 3,
    "max_seeds": 3,  # CI checks the command, not the losses: a short study
}


class Run:
    """One run: the device, data, extractor and summary every part uses."""

    def __init__(
        self,
        args: argparse.Namespace,
        out: Path,
        limit: float,
        started: float,
        imports: dict[str, str],
    ) -> None:
        self.tiny = args.tiny
        self.sizes = TINY if self.tiny else FULL
        self.reference = torch.device("cpu")
        self.device = self.reference if self.tiny else resolve_device(args.device)
        self.started, self.limit = started, limit
        self.clock = Clock(started + limit - budgets(limit, self.tiny)["margin"])
        self.data_root = args.data_root
        # --tiny takes Inception only from --weights: $GANBENCH_INCEPTION is set on machines
        # (CI) where the CPU extracts 8 images/s, which no tiny run can wait for.
        self.weights = args.weights or (None if self.tiny else os.environ.get(ENV_INCEPTION))
        self.extractor_name = "tiny" if self.tiny and not self.weights else "inception"
        if self.extractor_name == "tiny":
            self.weights = None
        if not os.environ.get("GANBENCH_CACHE"):  # real statistics go with the run's files
            os.environ["GANBENCH_CACHE"] = str(out / "cache")
        self.dataset = TINY_DATASET if self.tiny else "mnist"
        self.networks = "mlp" if self.tiny else "infogan"
        # Refusals (no data, no weights) before any work: load both now.
        self.data = load_dataset(self.dataset, self.data_root)
        build_extractor(self.extractor_name, self.weights, "cpu")
        self.summary = Summary(
            out,
            {
                "tiny": self.tiny,
                "state": "running",
                "time_limit_s": limit,
                "budget_s": {k: round(v, 1) for k, v in budgets(limit, self.tiny).items()},
                "device": _device_record(self.device, self.reference),
                "imports": imports,
                "dataset": self.dataset,
                "networks": self.networks,
                "extractor": self.extractor_name,
                "weights": self.weights,
                "batch_size": self.sizes["batch_size"],
            },
        )
        self.record = self.summary.record
        self.ok = True

    def trial(self, model: str, **overrides: Any) -> TrialConfig:
        """The model's default trial on the run's dataset, networks and batch size."""
        preset = MODELS.get(model, "model")
        networks = FAMILIES.get(self.networks).networks_for(preset.discriminator)
        values = {
            "batch_size": self.sizes["batch_size"],
            "metrics": (),
            "sweep": "gpu-check",
            **networks,
            **overrides,
        }
        return resolve_trial(model, self.dataset, **values)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def all(self) -> int:
        state = "stopped"
        try:
            for name, part in (
                ("equivalence", self.equivalence),
                ("speed", self.speed),
                ("ring", self.ring),
                ("study", self.study),
            ):
                if self.clock.deadline - time.monotonic() < 1.0:
                    self.summary.note(f"{name}: not started, the time limit was reached")
                    continue
                part()
            state = "finished"
        finally:
            self.record["state"] = state
            self.record["elapsed_s"] = self.elapsed()
            self.summary.save()
        return 0 if self.ok else 1

    def overrun(self) -> None:
        """The watchdog's end of the run: stop the study's children, keep the summary of what
        finished (the last one written stays if this one cannot be), exit at once with
        STOPPED_BY_WATCHDOG (never 0: an item was cut short, and a caller must not read the
        run as complete)."""
        from benchmark.gpu_check.study import CHILDREN

        for process in list(CHILDREN):
            process.kill()
        try:
            self.record["state"] = "stopped at the time limit"
            self.record["elapsed_s"] = self.elapsed()
            self.summary.note("the time limit stopped an item that had not finished")
        except Exception:  # the main thread was changing the record; files stay as they were
            pass
        print(
            f"gpu-check: the time limit ({self.limit:g} s) stopped an item that had not "
            f"finished; what finished is in {self.summary.out} (exit {STOPPED_BY_WATCHDOG})",
            file=sys.stderr,
            flush=True,
        )
        os._exit(STOPPED_BY_WATCHDOG)

    def _row(self, section: str, key: str):
        def add(row: dict[str, Any]) -> None:
            if row.get("ok") is False or "error" in row:
                self.ok = False
            for text in (row.get("skipped"), row.get("error")):
                if text:
                    where = [row.get(k) for k in ("model", "size", "precision", "z_seed")]
                    named = " ".join(str(w) for w in where if w is not None)
                    self.summary.note(f"{section}/{key} {named}: {text}")
            self.record["elapsed_s"] = row["at_s"] = round(self.elapsed(), 2)
            self.summary.add(section, key, row)

        return add

    def equivalence(self) -> None:
        self.clock.start_part(budgets(self.limit, self.tiny)["equivalence"])
        same = self.device == self.reference
        self.record["equivalence"] = {
            "what": (
                "The CPU against itself (--tiny, or no GPU): two runs from the same draws must "
                "be identical; it checks the check, not a device."
                if same
                else f"{self.device} against {self.reference}, float64, the same random draws "
                "(made on the CPU for both)."
            )
        }
        trials = {m: self.trial(m) for m in PAPER_MODELS}
        images = self.data.train[:2048]
        steps = self.sizes["equivalence_steps"]
        check_devices(
            trials,
            images,
            self.device,
            self.reference,
            steps,
            self.clock,
            self._row("equivalence", "devices"),
        )
        members = self.sizes["population_members"]
        check_population(
            trials,
            images,
            self.device,
            members,
            2 * steps,
            self.clock,
            self._row("equivalence", "population"),
        )
        if not self.clock.fits(2.0):
            self._row("equivalence", "features")({"skipped": "did not fit in the budget"})
            return
        row = check_features(
            lambda where: build_extractor(self.extractor_name, self.weights, where),
            self.data.test[: self.sizes["feature_images"]],
            self.device,
            self.reference,
            self.sizes["fid_batch"],
        )
        self._row("equivalence", "features")(row)

    def speed(self) -> None:
        self.clock.start_part(budgets(self.limit, self.tiny)["speed"])
        sizes = dict(self.sizes["sizes"])
        auto = self._auto_size()
        if auto is not None:
            sizes["auto"] = auto
        # Every paper model op by op; the compiled step of two (a compile takes tens of
        # seconds), left out of a --tiny run.
        runs = [(PAPER_MODELS, False)] + ([] if self.tiny else [(("ns", "wgan_gp"), True)])
        for models, compile in runs:
            measure_steps(
                self.trial,
                self.data.train,
                self.device,
                sizes,
                self.sizes["seconds"],
                self.clock,
                self._row("speed", "steps"),
                models=models,
                compile=compile,
            )
        if not self.clock.fits(3.0):
            self._row("speed", "fid")(
                {"kind": "precision", "precision": "all", "images": 0, "skipped": "did not fit"}
            )
            return
        trial = self.trial("ns")
        generator = train_generator(
            trial, self.data.train, self.device, self.sizes["generator_steps"]
        )
        extractor = build_extractor(self.extractor_name, self.weights, self.device)
        n = min(self.sizes["fid_images"], len(self.data.test))
        start = time.perf_counter()
        measure_precision(
            extractor,
            self.data.test[:n],
            generator,
            trial,
            self.sizes["fid_batch"],
            self.sizes["z_seeds"],
            self.clock,
            self._row("speed", "fid"),
        )
        self.record["speed"]["precision_seconds"] = time.perf_counter() - start
        self._precision_effect()

    def _auto_size(self) -> int | None:
        try:
            from benchmark.training.population import auto_size
        except ImportError as error:
            self._row("speed", "auto")({"members": None, "note": f"not measured: {error}"})
            return None
        members = auto_size(self.trial("ns"), str(self.device))
        note = (
            "half the total GPU memory, at most 64"
            if self.device.type == "cuda"
            else "by network family on a CPU"
        )
        self._row("speed", "auto")({"members": members, "note": note})
        return members

    def _precision_effect(self) -> None:
        rows = self.record.get("speed", {}).get("fid", [])
        fid = {
            r["precision"]: r["fid"] for r in rows if r.get("kind") == "precision" and "fid" in r
        }
        spread = [r["fid"] for r in rows if r.get("kind") == "z_seed" and "fid" in r]
        if "fp32" not in fid or len(spread) < 2:
            return
        sd = statistics.stdev([fid["fp32"], *spread])
        effects = {name: value - fid["fp32"] for name, value in fid.items() if name != "fp32"}
        text = (
            "Precision effect (FID minus the fp32 FID of the same set): "
            + ", ".join(f"{k} {v:+.3g}" for k, v in effects.items())
            + f"; the sd of the fp32 FID over {len(spread) + 1} z sets of the same generator is "
            f"{sd:.3g}."
        )
        self.record["speed"]["precision_effect"] = {"effects": effects, "z_sd": sd, "text": text}
        self.summary.save()

    def _images_per_s(self) -> float:
        """FID extraction images/s at PyTorch's default precision (TF32 convolutions), the
        study's: measured in the speed part, else timed now on one batch."""
        rows = [r for r in self.record.get("speed", {}).get("fid", []) if r.get("images_per_s")]
        rate = {r["precision"]: r["images_per_s"] for r in rows}
        if rate.get("tf32") or rate.get("fp32"):
            return rate.get("tf32") or rate["fp32"]
        from benchmark.gpu_check.checks import extraction_rate, probe_size

        extractor = build_extractor(self.extractor_name, self.weights, self.device)
        batch = self.data.test[: probe_size(self.device, self.sizes["fid_batch"])]
        return extraction_rate(extractor, batch, self.device, len(batch), "tf32")[1]

    def _eval_seconds(self, images_per_s: float) -> float:
        """One evaluation of one member: sampling and features of n_fake images (sampling
        counted as a fifth of the extraction), and one Frechet distance."""
        dim = 64 if self.extractor_name == "tiny" else 2048
        return self.sizes["fid_images"] / images_per_s * 1.2 + frechet_seconds(dim)

    def ring(self) -> None:
        """Welfert et al. 2023's ring study, minimax and NS, beside the published rates."""
        from benchmark.gpu_check.ring import run_ring

        if str(self.record["imports"].get("scipy", "")).startswith("missing"):
            self.summary.note("ring: not started: scipy is missing")
            return
        shares = budgets(self.limit, self.tiny)
        self.clock.start_part(shares["ring"])
        # measuring (compiling, on a GPU) and one child's start, at the least
        least = RING_LEAST_S["tiny" if self.tiny else self.device.type]
        if not self.clock.fits(least):
            self.summary.note(f"ring: not started: it needs {least:.0f} s at the least, "
                              f"{self.clock.left():.0f} s were left")  # fmt: skip
            return
        self.record["ring"] = run_ring(self, self.clock.left(), shares["ring"] / self.limit)
        if "skipped" in self.record["ring"]:
            self.summary.note(f"ring: {self.record['ring']['skipped']}")
        self.summary.save()

    def study(self) -> None:
        remaining = self.clock.deadline - time.monotonic()
        self.clock.start_part(remaining)
        steps = {}
        for row in self.record.get("speed", {}).get("steps", []):
            if row.get("steps_per_s"):
                steps.setdefault(row["model"], {})[row["population"]] = 1 / row["steps_per_s"]
        fid_n = min(self.sizes["fid_images"], len(self.data.test))
        base = {
            "metrics": ("fid",),
            "fid_n_real": fid_n,
            "fid_n_fake": fid_n,
            "feature_extractor": self.extractor_name,
        }
        one = {m: self.trial(m, **base) for m in PAPER_MODELS}
        images_per_s = self._images_per_s()
        first = fid_n / images_per_s + CHILD_START_S[self.device.type]
        if not self.clock.fits(first + self._eval_seconds(images_per_s) + 1.0):
            self.summary.note(
                f"study: not started: the real statistics ({fid_n} images at "
                f"{images_per_s:.0f} images/s) and one evaluation do not fit in the "
                f"{self.clock.left():.0f} s left"
            )
            return
        # Real statistics once, here, rather than in every child at once.
        Evaluator(
            dataset=self.dataset,
            test_images=self.data.test,
            metrics=("fid",),
            n_real=fid_n,
            n_fake=fid_n,
            extractor=self.extractor_name,
            weights=self.weights,
            device=self.device,
        ).prepare()
        budget = self.clock.deadline - time.monotonic() - CHILD_START_S[self.device.type]
        # The populations share one device, so their times add up, except that the children
        # overlap one another's host work (kernel launches, Frechet distances): assumed to
        # halve the sum on a GPU (PARALLEL_SPEEDUP, not measured yet: the summary keeps the
        # estimate beside the time taken, to set it from).
        speedup = PARALLEL_SPEEDUP[self.device.type]
        seeds, costs = plan_seeds(
            one,
            steps,
            self._eval_seconds(images_per_s),
            budget * speedup,
            workers=1,
            most=self.sizes["max_seeds"],
        )
        populations = {
            m: [self.trial(m, seed=s, **base) for s in range(seeds)] for m in PAPER_MODELS
        }
        workers = (
            1
            if self.device.type == "cpu"
            else min(len(PAPER_MODELS), max(1, (os.cpu_count() or 2) // 2))
        )
        estimate = sum(costs.values()) / speedup
        self.record["study"] = {
            "seeds": seeds,
            "estimated_seconds": estimate,
            "parallel_speedup_assumed": speedup,
            "budget_seconds": budget,
            "workers": workers,
            "plan": (
                f"{len(PAPER_MODELS)} models x {seeds} seeds at their defaults on {self.dataset}, "
                f"{self._schedule_text(one['ns'])}, FID on {fid_n} samples; one population per "
                f"model in {workers} processes; estimated {estimate:.0f} s of {budget:.0f} s."
            ),
        }
        self.summary.save()

        def progress(result: dict[str, Any]) -> None:
            self.record["study"]["result"] = result
            self.record["elapsed_s"] = self.elapsed()
            self.summary.save()

        result = run_study(
            populations,
            self.summary.out / "study",
            data_root=self.data_root,
            device=self.device,
            weights=self.weights,
            workers=workers,
            costs=costs,
            deadline=self.clock.deadline,
            on_progress=progress,
        )
        progress(result)
        for model in result["models"]:
            if model["seeds_finished"] < model["seeds_planned"]:
                self.summary.note(
                    f"study {model['model']}: {model['seeds_finished']} of "
                    f"{model['seeds_planned']} seeds finished before the time limit"
                )

    @staticmethod
    def _schedule_text(trial: TrialConfig) -> str:
        from benchmark.schedule import trial_schedule

        schedule = trial_schedule(trial)
        return f"{schedule.steps} D steps, FID after {', '.join(map(str, schedule.eval_steps))}"
