"""Published values of Lucic et al. 2018, shown beside ours and never used in a computation.

Source: M. Lucic, K. Kurach, M. Michalski, S. Gelly, O. Bousquet, "Are GANs Created Equal?
A Large-Scale Study", NeurIPS 2018 (arXiv:1711.10337v4), Table 2: the best FID of each
model and dataset, mean ± std of FID over the seeds of the setting chosen by the wide
search (100 hyperparameter samples), FID on 10,000 real and 10,000 generated images, at the
training lengths of docs/fidelity.md ("What is followed").

TO VERIFY: these numbers were transcribed from two secondary sources that quote Table 2
(Dai & Wipf 2019, "Diagnosing and Enhancing VAE Models", Table 1; Zhang & Khoreva 2019,
"Progressive Augmentation of GANs", Table 2), not from the paper itself. The two agree on
every cell but two, listed in DISPUTED; check all 28 against Table 2 of arXiv:1711.10337v4
and set VERIFIED = True. The report marks every value as unverified until then.
"""

from __future__ import annotations

import pandas as pd

from analysis.scores import dataset_label, label
from benchmark.results import OK

VERIFIED = False
CITATION = "Lucic et al. 2018, Table 2"

#: (mean, std) of FID per (model, dataset).
TABLE2: dict[tuple[str, str], tuple[float, float]] = {
    ("mm", "mnist"): (9.8, 0.9), ("mm", "fashion_mnist"): (29.6, 1.6),
    ("mm", "cifar10"): (72.7, 3.6), ("mm", "celeba"): (65.6, 4.2),
    ("ns", "mnist"): (6.8, 0.5), ("ns", "fashion_mnist"): (26.5, 1.6),
    ("ns", "cifar10"): (58.5, 1.9), ("ns", "celeba"): (55.0, 3.3),
    ("ls", "mnist"): (7.8, 0.6), ("ls", "fashion_mnist"): (30.7, 2.2),
    ("ls", "cifar10"): (87.1, 47.5), ("ls", "celeba"): (53.9, 2.8),
    ("wgan", "mnist"): (6.7, 0.4), ("wgan", "fashion_mnist"): (21.5, 1.6),
    ("wgan", "cifar10"): (55.2, 2.3), ("wgan", "celeba"): (41.3, 2.0),
    ("wgan_gp", "mnist"): (20.3, 5.0), ("wgan_gp", "fashion_mnist"): (24.5, 2.1),
    ("wgan_gp", "cifar10"): (55.8, 0.9), ("wgan_gp", "celeba"): (30.3, 1.0),
    ("dragan", "mnist"): (7.6, 0.4), ("dragan", "fashion_mnist"): (27.7, 1.2),
    ("dragan", "cifar10"): (69.8, 2.0), ("dragan", "celeba"): (42.3, 3.0),
    ("began", "mnist"): (13.1, 1.0), ("began", "fashion_mnist"): (22.9, 0.9),
    ("began", "cifar10"): (71.4, 1.6), ("began", "celeba"): (38.9, 0.9),
}  # fmt: skip

#: Cells where the secondary sources differ (Dai & Wipf value first).
DISPUTED = {
    ("ls", "cifar10"): "std 47.5 (Dai & Wipf) or 0.9 (Zhang & Khoreva)",
    ("wgan_gp", "celeba"): "mean 30.3 (Dai & Wipf) or 30.0 (Zhang & Khoreva)",
}

#: The protocol of Table 2: D steps of training and the FID sample sizes.
D_STEPS = {"mnist": 15625, "fashion_mnist": 15625, "cifar10": 78125, "celeba": 101250}
FID_N = 10000
METRIC = "fid_min"
PHASE = "seeds"
#: The paper's networks (InfoGAN-style, BEGAN's auto-encoder for BEGAN): benchmark.networks'
#: `infogan` family. Other networks (e.g. `mlp`) are another experiment.
NETWORKS = ("infogan", "began")


def comparable(rows: pd.DataFrame, dataset: str, metric: str, phase: str) -> str:
    """Why the cells of this dataset do not follow the paper's protocol, or '' if they do:
    same dataset, phase (seeds of the best wide setting), metric, networks, training length
    and FID n."""
    if dataset not in D_STEPS:
        return "dataset not in the paper's Table 2"
    if metric != METRIC or phase != PHASE:
        return f"Table 2 reports `{METRIC}` of the `{PHASE}` phase"
    for column in ("generator", "discriminator"):
        if column not in rows or not rows[column].isin(NETWORKS).all():
            return f"Table 2 uses the paper's networks ({', '.join(NETWORKS)})"
    for column, wanted in (("fid_n_real", FID_N), ("fid_n_fake", FID_N)):
        if column not in rows or not (rows[column] == wanted).all():
            return f"Table 2 uses FID on {FID_N} real and {FID_N} generated images"
    trained = rows.loc[rows["status"] == OK, "d_steps"] if "d_steps" in rows else None
    if trained is None or not (trained.dropna() == D_STEPS[dataset]).all():
        return f"Table 2 trains {D_STEPS[dataset]} D steps on this dataset"
    return ""


def published(model: str, dataset: str) -> str:
    """'mean ± std' of Table 2, marked when unverified or disputed; '—' if not in the table."""
    value = TABLE2.get((model, dataset))
    if value is None:
        return "—"
    text = f"{value[0]:.1f} ± {value[1]:.1f}"
    if (model, dataset) in DISPUTED:
        text += " ‡"
    return text if VERIFIED else text + " †"


def note() -> str:
    """The footnote under a table with a published column."""
    text = f"Published: {CITATION} (mean ± std of FID over seeds of the best wide setting)."
    if not VERIFIED:
        text += (
            " † transcribed from secondary sources quoting the table, not yet checked against "
            "the paper (see analysis/paper.py)."
        )
    if DISPUTED:
        text += " ‡ the sources differ: " + "; ".join(
            f"{label(model)} on {dataset_label(dataset)}: {why}"
            for (model, dataset), why in DISPUTED.items()
        )
        text += "."
    return text
