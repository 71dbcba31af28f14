"""Synthetic sweeps with known structure, for tests and a demo report (no training involved)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.results import (
    DIVERGED,
    FLOP_COLUMNS,
    OK,
    RESULT,
    RESULTS_CSV,
    STEP_PREFIX,
    TRIALS,
    results_frame,
)

MODELS = ("mm", "ns", "ls", "wgan", "wgan_gp", "dragan", "began")
#: Model quality (log-FID offset), best log10 lr, divergence-proneness, relative step cost.
TRAITS = {
    "mm": (0.25, -3.6, 1.0, 1.0), "ns": (0.05, -3.6, 0.8, 1.0), "ls": (0.15, -3.5, 1.2, 1.0),
    "wgan": (0.20, -4.0, 0.6, 1.0), "wgan_gp": (0.10, -3.8, 0.3, 1.9),
    "dragan": (0.12, -3.7, 0.5, 1.6), "began": (0.30, -3.9, 0.7, 1.3),
}  # fmt: skip
BASE_FID = {"mnist": 9.0, "fashion_mnist": 30.0, "cifar10": 70.0, "polygons": 12.0}
BASE_SECONDS = {"mnist": 900.0, "fashion_mnist": 900.0, "cifar10": 4000.0, "polygons": 400.0}
CHECKPOINTS = (3125, 6250, 9375, 12500, 15625)
#: FLOPs of one D step of a model of relative step cost 1 (a G step costs G_STEP of it), and
#: of one evaluation: counted from the structure, so the same on every run, unlike `seconds`.
D_STEP_FLOPS = {"mnist": 6.0e9, "fashion_mnist": 6.0e9, "cifar10": 2.4e10, "polygons": 2.0e7}
G_STEP = 0.6
EVAL_FLOPS = {"mnist": 5.7e13, "fashion_mnist": 5.7e13, "cifar10": 5.7e13, "polygons": 2.0e9}


def _trial_id(*parts) -> str:
    return hashlib.sha1(repr(parts).encode()).hexdigest()[:12]


def make_sweep(
    datasets: tuple[str, ...] = ("mnist", "polygons"),
    models: tuple[str, ...] = MODELS,
    n_samples: int = 20,
    seeds: bool = True,
    fid: bool = True,
    seed: int = 0,
    variants: dict[str, float] | None = None,
    flops: bool = True,
) -> pd.DataFrame:
    """A wide phase (sample 0 = default) and, if `seeds`, a seeds phase with select/report
    seeds for the two best wide settings of each model. FID rises away from each model's
    best learning rate and divergence is likelier at large learning rates.

    `variants` maps ablation variant names to a log-FID shift: each sample of each model then
    runs once per variant (its name in `extra_variant`), as a spec's [[variants]] do; like
    a spec, such a sweep has no seeds phase. `flops=False` leaves out the FLOP columns, as
    in results recorded before FLOP counts."""
    if variants and seeds:
        raise ValueError("a sweep with variants has no seeds phase: pass seeds=False")
    rng = np.random.default_rng(seed)
    rows = []
    for dataset in datasets:
        for model in models:
            quality, best_lr, unstable, cost = TRAITS.get(model, (0.2, -3.7, 1.0, 1.0))
            for sample in range(n_samples):
                hp = _hyperparameters(rng, sample)
                penalty = (np.log10(hp["lr"]) - best_lr) ** 2 * 0.35 + 0.25 * hp["beta1"]
                log_fid = np.log(BASE_FID.get(dataset, 30.0)) + quality + penalty
                p_div = unstable / (1 + np.exp(-3.0 * (np.log10(hp["lr"]) + 2.7)))
                for variant, shift in (variants or {"": 0.0}).items():
                    row = _row(rng, dataset, model, "wide", sample, 0, hp, log_fid + shift,
                               p_div, cost, fid)  # fmt: skip
                    if variant:
                        row["trial_id"] = _trial_id(dataset, model, variant, sample)
                        row["extra_variant"] = variant
                    rows.append(row)
    frame = pd.DataFrame(rows)
    if seeds:
        frame = pd.concat([frame, _seeds_phase(rng, frame, fid)], ignore_index=True)
    return frame if flops else frame.drop(columns=list(FLOP_COLUMNS))


def _hyperparameters(rng: np.random.Generator, sample: int) -> dict:
    if sample == 0:
        return {"lr": 1e-4, "beta1": 0.5, "beta2": 0.999, "n_disc": 1, "d_bn": True}
    return {
        "lr": 10 ** rng.uniform(-5, -2),
        "beta1": rng.uniform(0, 1),
        "beta2": 0.999,
        "n_disc": int(rng.choice([1, 5])),
        "d_bn": bool(rng.integers(2)),
    }


def _row(rng, dataset, model, phase, sample, seed, hp, log_fid, p_div, cost, fid) -> dict:
    """One trial. A diverged trial stops at a random step; the checkpoints evaluated before
    it keep their FID (its `fid_min`), later ones are NaN; before the first it is unscored."""
    diverged = rng.random() < p_div
    seconds = BASE_SECONDS.get(dataset, 600.0) * cost * rng.lognormal(0, 0.08)
    row = {
        "trial_id": _trial_id(dataset, model, phase, sample, seed),
        "sweep": "synthetic", "phase": phase, "dataset": dataset, "model": model,
        "loss": model.split("_")[0], "penalty": {"wgan_gp": "gp", "dragan": "dragan"}.get(
            model, "none"),
        "seed": seed, "sample": sample, **hp,
        "clip": 0.01 if model == "wgan" else np.nan,
        "lam": 10.0 if model in ("wgan_gp", "dragan") else np.nan,
        "lambda_k": 1e-3 if model == "began" else np.nan,
        "gamma": 0.75 if model == "began" else np.nan,
        "status": DIVERGED if diverged else OK,
        "error": "non-finite loss" if diverged else "",
        "d_steps": CHECKPOINTS[-1], "images_seen": CHECKPOINTS[-1] * 64,
        "seconds": seconds * (rng.uniform(0.1, 0.6) if diverged else 1.0),
        "generator": "began" if model == "began" else "infogan",
        "discriminator": "began" if model == "began" else "infogan",
        "device": "cuda:0 (NVIDIA H100)", "fid_n_real": 10000, "fid_n_fake": 10000,
        "fid_resize": "torch-fidelity bilinear (TF1-compatible)",
        "inception_sha256": "6726825d" + "0" * 56,
        "torch_version": "2.14.1", "ganbench_version": "0.1.0",
    }  # fmt: skip
    best = float(np.exp(log_fid + rng.normal(0, 0.2)))
    shape = 1 + 2.5 * np.exp(-np.arange(len(CHECKPOINTS)) / 1.2) + rng.uniform(0, 0.15, 5)
    shape = shape / shape.min()
    curve = best * shape
    if diverged:
        at = int(rng.integers(1, CHECKPOINTS[-1]))
        curve = np.where(np.array(CHECKPOINTS) < at, curve, np.nan)
        row |= {"diverged_at": at, "d_steps": at, "images_seen": at * 64}
    row["g_steps"] = row["d_steps"] // hp["n_disc"]
    steps = row["d_steps"] + G_STEP * row["g_steps"]
    evaluations = sum(c <= row["d_steps"] for c in CHECKPOINTS)
    row["train_flops"] = cost * D_STEP_FLOPS.get(dataset, 6.0e9) * steps
    row["eval_flops"] = evaluations * EVAL_FLOPS.get(dataset, 5.7e13)
    row["flops"] = row["train_flops"] + row["eval_flops"]
    seen = curve[np.isfinite(curve)]
    best = float(seen.min()) if seen.size else np.nan
    row |= {"fid_min": best, "fid_final": curve[-1], "kid": best / 1000}
    row |= {f"{STEP_PREFIX}{d}": v for d, v in zip(CHECKPOINTS, curve, strict=True)}
    if dataset == "polygons" and not diverged:
        quality = np.exp(-(best / BASE_FID["polygons"] - 1) / 2)
        precision = float(np.clip(quality + rng.normal(0, 0.05), 0, 1))
        recall = float(np.clip(0.9 * quality + rng.normal(0, 0.05), 0, 1))
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        row |= {"precision": precision, "recall": recall, "f1": f1}
    if not fid:
        row |= {"fid_min": np.nan, "fid_final": np.nan, "kid": np.nan}
        row |= {f"{STEP_PREFIX}{d}": np.nan for d in CHECKPOINTS}
    return row


def _seeds_phase(rng: np.random.Generator, wide: pd.DataFrame, fid: bool) -> pd.DataFrame:
    """Two candidate settings per cell, 5 `select` seeds and 10 `report` seeds each."""
    rows = []
    key = "fid_min" if fid else "f1"
    for (dataset, model), cell in wide.groupby(["dataset", "model"], sort=False):
        quality, best_lr, unstable, cost = TRAITS.get(model, (0.2, -3.7, 1.0, 1.0))
        ranked = cell.dropna(subset=[key]).sort_values(key, ascending=(key == "fid_min"))
        for _, top in ranked.head(2).iterrows():
            hp = {k: top[k] for k in ("lr", "beta1", "beta2", "n_disc", "d_bn")}
            log_fid = np.log(top["fid_min"]) if fid else np.log(BASE_FID[dataset])
            for seed in range(15):
                row = _row(rng, dataset, model, "seeds", int(top["sample"]), seed, hp,
                           log_fid, 0.05 * unstable, cost, fid)  # fmt: skip
                rows.append(row | {"seed_role": "select" if seed < 5 else "report"})
    return pd.DataFrame(rows)


def write_sweep(frame: pd.DataFrame, sweep_dir: str | Path, csv: bool = True) -> Path:
    """Store `frame` as a sweep: trials/<id>/result.json (with checkpoints and, from the
    `extra_<key>` columns, `extra`) and results.csv."""
    sweep_dir = Path(sweep_dir)
    steps = [c for c in frame.columns if c.startswith(STEP_PREFIX)]
    extra = [c for c in frame.columns if c.startswith("extra_")]
    records = []
    for _, row in frame.iterrows():
        record = {k: _plain(v) for k, v in row.items() if k not in steps + extra}
        if extra:
            record["extra"] = {c[len("extra_") :]: _plain(row[c]) for c in extra}
        record["checkpoints"] = [
            {"d_steps": int(c[len(STEP_PREFIX) :]), "fid": _plain(row[c])} for c in steps
        ]
        path = sweep_dir / TRIALS / str(row["trial_id"]) / RESULT
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(record, indent=2))
        records.append(record)
    if csv:  # written as the sweep writes it
        results_frame(records).to_csv(sweep_dir / RESULTS_CSV, index=False)
    return sweep_dir


def _plain(value):
    if isinstance(value, np.generic):
        value = value.item()
    return None if isinstance(value, float) and np.isnan(value) else value
