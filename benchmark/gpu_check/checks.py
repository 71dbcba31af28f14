"""The checks and measurements of `python -m benchmark gpu-check` (benchmark/gpu_check/__init__.py).

Equivalence: a few steps of each paper model on the device against the CPU in float64, a
population against its members alone on the device, and FID features of the same images on
both. Measurements: D steps/s per model and population size, FID extraction images/s and the
FID of one generated set in fp32, TF32 and bf16 against the spread over z seeds.

Every function takes a `Clock` and returns rows; an item that does not fit in the part's
budget is skipped with a note, so a time limit never cuts one in half.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import torch
from torch import Tensor, nn

from benchmark.config import TrialConfig
from benchmark.latents import LATENTS
from benchmark.models import PAPER_MODELS
from benchmark.perf.bench_populations import steps_per_second, sync
from benchmark.training.step import GANTraining

# Weights after a few float64 steps on two devices (or of a population member and its trial
# alone) agree to this, relative to the largest weight of each tensor: the same arithmetic in
# other kernels differs in summation order only (about 1e-16 per operation; batch norm
# amplifies it, tests/training/test_population.py measured up to 5e-10 after 20 steps),
# while any real difference of a step (another z, batch or lr) moves weights by about lr,
# 1e-4 and more.
WEIGHT_TOLERANCE = 1e-9
# FID features (fp32, TF32 off) of the same images on two devices: other conv algorithms
# change the summation order of 2048-long sums of float32 products (about 1e-6 relative); a
# wrong resize or weight layout changes features by percents.
FEATURE_TOLERANCE = 1e-4
PRECISIONS = ("fp32", "tf32", "bf16")


class Clock:
    """Time left to the run and to the current part; `fits(seconds)` before each item."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.part_end = deadline

    def start_part(self, seconds: float) -> None:
        self.part_end = min(self.deadline, time.monotonic() + seconds)

    def left(self) -> float:
        return self.part_end - time.monotonic()

    def fits(self, seconds: float) -> bool:
        return self.left() >= seconds


class HostDraws:
    """Every random draw of a training step made from CPU generators and moved to the device,
    so that runs on two devices draw the same numbers (each device's own torch.Generator
    draws others from the same seed). Installed over a GANTraining's own draws."""

    def __init__(self, training: GANTraining) -> None:
        self.training = training
        self.device = training.device
        self.generators = [torch.Generator().manual_seed(t.seed) for t in training.trials]

    def draw(self, sample: Callable[[torch.Generator], Tensor]) -> Tensor:
        from benchmark.training.order import PerMember

        if isinstance(sample, PerMember):  # a walk's batch: no generator, the same anywhere
            return torch.stack([sample(i) for i in range(len(self.generators))]).to(self.device)
        return torch.stack([sample(g) for g in self.generators]).to(self.device)

    def uniform(self, shape, dtype: torch.dtype = torch.float32) -> Tensor:
        return self.draw(lambda g: torch.rand(tuple(shape), generator=g, dtype=dtype))

    def real_batch(self) -> Tensor:
        training = self.training
        n, batch = len(training.images), training.trial.batch_size
        index = self.draw(lambda g: torch.randint(n, (batch,), generator=g))
        return training.images[index].to(training.dtype).div_(255)

    def sample_z(self) -> Tensor:
        trial = self.training.trial
        latent = LATENTS.get(trial.latent)
        cpu = torch.device("cpu")
        return self.draw(lambda g: latent.sample(trial.batch_size, trial.z_dim, g, cpu))

    def install(self) -> None:
        self.training.streams = self  # penalties and label flips draw through .uniform
        self.training.real_batch = self.real_batch
        self.training.sample_z = self.sample_z


@contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def _bn_cancelled(prefix: str, network: nn.Module) -> set[str]:
    """Biases of layers directly followed by batch norm, and that norm's running mean: the
    norm subtracts the bias again, so its gradient is zero up to round-off, which Adam scales
    to moves of about lr that no output can see and that differ between any two runs."""
    names = set()
    for name, module in network.named_modules():
        layers = list(module.children()) if isinstance(module, nn.Sequential) else []
        for index, (layer, after) in enumerate(zip(layers, layers[1:], strict=False)):
            is_norm = isinstance(after, nn.modules.batchnorm._BatchNorm)
            if is_norm and getattr(layer, "bias", None) is not None:
                names.add(f"{prefix}.{name}.{index}.bias")
                names.add(f"{prefix}.{name}.{index + 1}.running_mean")
    return names


def member_tensors(training: GANTraining, i: int) -> dict[str, Tensor]:
    """Member i's compared state: G and D weights and buffers, and the loss state."""
    state = training.member_state(i)
    tensors = {f"g.{k}": v for k, v in state["g"].items()}
    tensors.update({f"d.{k}": v for k, v in state["d"].items()})
    tensors.update({f"loss_state.{k}": v for k, v in state["loss_state"].items()})
    skip = _bn_cancelled("g", training.g) | _bn_cancelled("d", training.d)
    return {k: v for k, v in tensors.items() if k not in skip and "num_batches" not in k}


def relative_difference(a: dict[str, Tensor], b: dict[str, Tensor]) -> float:
    """max over tensors of max|a - b| / max|b| (0 for equal tensors, inf for other keys)."""
    if a.keys() != b.keys():
        return math.inf
    worst = 0.0
    for key, value in b.items():
        x, y = a[key].detach().double().cpu(), value.detach().double().cpu()
        scale = float(y.abs().max()) if y.numel() else 0.0
        diff = float((x - y).abs().max()) if y.numel() else 0.0
        worst = max(worst, diff / scale if scale > 0 else diff)
    return worst


def _train(trials: list[TrialConfig], images: Tensor, device: torch.device, steps: int, host: bool):
    training = GANTraining(trials, images, device)
    if host:
        HostDraws(training).install()
    for _ in range(steps):
        training.train_step()
    return training


def _compare_each(
    trials: dict[str, TrialConfig],
    fields: dict[str, Any],
    clock: Clock,
    on_row: Callable[[dict[str, Any]], None],
    compare: Callable[[TrialConfig], float],
) -> None:
    """One row per model: `compare(trial)` (a relative difference, run in float64) against
    WEIGHT_TOLERANCE, with its time; a model that does not fit the clock is skipped, and an
    error is recorded so that the check goes on with the next model."""
    last = 1.0  # seconds the previous model took: the next one needs about as long
    for model, trial in trials.items():
        row: dict[str, Any] = {"model": model, **fields, "tolerance": WEIGHT_TOLERANCE}
        if not clock.fits(1.5 * last):
            on_row({**row, "skipped": "did not fit in the equivalence budget"})
            continue
        start = time.perf_counter()
        try:
            with default_dtype(torch.float64):
                difference = compare(trial)
        except Exception as error:  # recorded: the check goes on with the next model
            on_row({**row, "error": f"{type(error).__name__}: {str(error)[:200]}"})
            continue
        last = time.perf_counter() - start
        row.update(
            max_relative_difference=difference, ok=difference <= WEIGHT_TOLERANCE, seconds=last
        )
        on_row(row)


def check_devices(
    trials: dict[str, TrialConfig],
    images: Tensor,
    device: torch.device,
    reference: torch.device,
    steps: int,
    clock: Clock,
    on_row: Callable[[dict[str, Any]], None],
) -> None:
    """Each model trained `steps` steps in float64 on `device` and on `reference` from the same
    draws (HostDraws); the weights compared with WEIGHT_TOLERANCE."""

    def compare(trial: TrialConfig) -> float:
        runs = [_train([trial], images, d, steps, host=True) for d in (device, reference)]
        return relative_difference(member_tensors(runs[0], 0), member_tensors(runs[1], 0))

    _compare_each(trials, {"steps": steps}, clock, on_row, compare)


def population_members(trial: TrialConfig, size: int) -> list[TrialConfig]:
    """`size` trials of one structure that differ as a search's do: seed and lr (x1.1 each)."""
    return [
        dataclasses.replace(trial, seed=trial.seed + i, lr=trial.lr * 1.1**i) for i in range(size)
    ]


def check_population(
    trials: dict[str, TrialConfig],
    images: Tensor,
    device: torch.device,
    members: int,
    steps: int,
    clock: Clock,
    on_row: Callable[[dict[str, Any]], None],
) -> None:
    """A population of `members` trials against each member trained alone, float64, on device."""

    def compare(trial: TrialConfig) -> float:
        group = population_members(trial, members)
        population = _train(group, images, device, steps, host=False)
        return max(
            relative_difference(
                member_tensors(population, i),
                member_tensors(_train([alone], images, device, steps, host=False), 0),
            )
            for i, alone in enumerate(group)
        )

    _compare_each(trials, {"members": members, "steps": steps}, clock, on_row, compare)


@contextmanager
def precision(name: str, device: torch.device) -> Iterator[None]:
    """fp32: TF32 off; tf32: TF32 on for matmuls and convolutions; bf16: autocast to bfloat16
    (TF32 off). PyTorch's own default is TF32 for convolutions only, which is what a trial's
    evaluation gets unless the flags are changed."""
    if name not in PRECISIONS:
        raise ValueError(f"precision {name!r}: expected one of {PRECISIONS}")
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # newer torch prefers fp32_precision; same switch
        torch.backends.cuda.matmul.allow_tf32 = name == "tf32"
        torch.backends.cudnn.allow_tf32 = name == "tf32"
    cast = torch.autocast(device.type, dtype=torch.bfloat16) if name == "bf16" else nullcontext()
    try:
        with cast:
            yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def check_features(
    build: Callable[[torch.device], nn.Module],
    images: Tensor,
    device: torch.device,
    reference: torch.device,
    batch_size: int,
) -> dict[str, Any]:
    """Features of the same images from the extractor on `device` and on `reference` (fp32)."""
    from benchmark.evaluation import extract_features

    features = []
    for where in (device, reference):
        extractor = build(where)
        with precision("fp32", where):
            features.append(extract_features(extractor, images, batch_size, where))
        del extractor
    scale = float(features[1].abs().max())
    difference = float((features[0] - features[1]).abs().max()) / scale
    return {
        "images": len(images),
        "max_relative_difference": difference,
        "tolerance": FEATURE_TOLERANCE,
        "ok": difference <= FEATURE_TOLERANCE,
    }


COMPILE_SECONDS = 60.0  # what compiling a step may take, kept free in the budget


def measure_steps(
    make_trial: Callable[[str], TrialConfig],
    images: Tensor,
    device: torch.device,
    sizes: dict[str, int],
    seconds: float,
    clock: Clock,
    on_row: Callable[[dict[str, Any]], None],
    models: tuple[str, ...] = PAPER_MODELS,
    compile: bool = False,
) -> None:
    """D steps/s of one population per model and size (`sizes`: label -> members); a member
    does one D step per population step, so member steps/s = steps/s x size. `compile`: the
    step as one compiled program (its compilation in the warm-up, timed apart)."""
    step = "compiled" if compile else "op by op"
    for model in models:
        measured: dict[int, dict[str, Any]] = {}
        one_step = 0.01  # seconds of a step alone, once measured (sizes run smallest first)
        for label, size in sorted(sizes.items(), key=lambda item: item[1]):
            row: dict[str, Any] = {"model": model, "size": label, "population": size}
            row["step"] = step
            if size in measured:  # auto chose a size measured already
                on_row(
                    {**row, **{k: measured[size][k] for k in ("steps_per_s", "member_steps_per_s")}}
                )
                continue
            # Two warm-up steps and at least `seconds` of steps, each at most `size` times a
            # step alone (a population is never slower than its members one by one), and
            # building the networks.
            compiling = COMPILE_SECONDS if compile else 0.0
            if not clock.fits(seconds + 3 * size * one_step + 1.0 + size * 0.02 + compiling):
                on_row({**row, "skipped": "did not fit in the measurement budget"})
                continue
            training = None
            try:
                trials = population_members(make_trial(model), size)
                trials = [dataclasses.replace(t, compile=compile) for t in trials]
                training = GANTraining(trials, images, device)
                if compile:  # both kinds of step compiled before the clock starts
                    start = time.perf_counter()
                    for _ in range(2 * trials[0].n_disc + 1):
                        training.train_step()
                    training.losses()
                    row["compile_seconds"] = time.perf_counter() - start
                rate = steps_per_second(training, seconds, warmup=2)
            except torch.OutOfMemoryError as error:
                on_row({**row, "skipped": f"out of memory: {str(error)[:120]}"})
                continue
            finally:
                training = None
                if device.type == "cuda":
                    torch.cuda.empty_cache()
            row.update(steps_per_s=rate, member_steps_per_s=rate * size)
            measured[size] = row
            if size == 1:
                one_step = 1 / rate
            on_row(row)


def extraction_rate(
    extractor: nn.Module, images: Tensor, device: torch.device, batch_size: int, name: str
) -> tuple[Tensor, float]:
    """Features of `images` in precision `name`, and images/s of that extraction (after one
    warm-up batch, so cuDNN's algorithm search is not counted)."""
    from benchmark.evaluation import extract_features

    with precision(name, device):
        extract_features(extractor, images[:batch_size], batch_size, device)
        sync(device)
        start = time.perf_counter()
        features = extract_features(extractor, images, batch_size, device)
        sync(device)
    return features, len(images) / (time.perf_counter() - start)


def probe_size(device: torch.device, batch_size: int) -> int:
    """Images to time an extractor on: a full batch on a GPU (where small batches are slow
    per image), a few on the CPU (where Inception takes a fraction of a second per image)."""
    return batch_size if device.type == "cuda" else min(batch_size, 8)


def train_generator(
    trial: TrialConfig, images: Tensor, device: torch.device, steps: int
) -> nn.Module:
    """Member 0's generator after `steps` D steps of `trial` on `images`, in eval mode."""
    training = GANTraining(trial, images, device)
    for _ in range(steps):
        training.train_step()
    return training.g.eval()


def samples(generator: nn.Module, n: int, trial: TrialConfig, z_seed: int) -> Tensor:
    """uint8 (n, C, H, W) CPU images of G on the evaluation's fixed z of seed `z_seed`."""
    from benchmark.evaluation import fixed_z, to_uint8

    device = next(generator.parameters()).device
    z = fixed_z(n, trial.z_dim, z_seed, trial.latent)
    batches = []
    with torch.inference_mode():
        for start in range(0, n, 500):
            batches.append(to_uint8(generator(z[start : start + 500].to(device))).cpu())
    return torch.cat(batches)


def measure_precision(
    extractor: nn.Module,
    real: Tensor,
    generator: nn.Module,
    trial: TrialConfig,
    batch_size: int,
    spread_seeds: int,
    clock: Clock,
    on_row: Callable[[dict[str, Any]], None],
) -> None:
    """FID of one generated set (z seed 0) against `real`, both extracted in each precision,
    with the extraction's images/s; then the fp32 FID of `spread_seeds` other z sets of the
    same generator: the sampling spread the precision effect is to be compared with."""
    from benchmark.evaluation import frechet_distance, mean_cov
    from benchmark.evaluation.extractors import device_of

    device = device_of(extractor)
    fake = samples(generator, len(real), trial, 0)
    real_fp32 = None
    # images/s of one batch, then of the last set: whether the next item fits
    probe = real[: probe_size(device, batch_size)]
    _, rate = extraction_rate(extractor, probe, device, len(probe), "fp32")
    for name in PRECISIONS:
        row: dict[str, Any] = {"kind": "precision", "precision": name, "images": 2 * len(real)}
        if not clock.fits(2 * len(real) / rate + 1.0):
            on_row({**row, "skipped": "did not fit in the measurement budget"})
            continue
        real_features, real_rate = extraction_rate(extractor, real, device, batch_size, name)
        fake_features, fake_rate = extraction_rate(extractor, fake, device, batch_size, name)
        rate = 2 / (1 / real_rate + 1 / fake_rate)
        fid = frechet_distance(*mean_cov(real_features), *mean_cov(fake_features))
        if name == "fp32":
            real_fp32 = mean_cov(real_features)
        on_row({**row, "images_per_s": rate, "fid": fid})
    for seed in range(1, spread_seeds + 1):
        row = {"kind": "z_seed", "precision": "fp32", "z_seed": seed, "images": len(real)}
        if real_fp32 is None or not clock.fits(len(real) / rate + 1.0):
            on_row({**row, "skipped": "did not fit in the measurement budget"})
            continue
        features, _ = extraction_rate(
            extractor, samples(generator, len(real), trial, seed), device, batch_size, "fp32"
        )
        on_row({**row, "fid": frechet_distance(*real_fp32, *mean_cov(features))})
