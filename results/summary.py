"""The 2-D study at a glance: one table per dataset from the committed reports (results/README.md,
and the README's opening section).

    python results/summary.py > results/README.md
"""

import json
import math
from pathlib import Path

import pandas as pd

HERE = Path(__file__).parent
ORDER = ["mm", "ns", "ls", "wgan", "wgan_gp", "dragan", "began"]
NAMES = {"mm": "MM GAN", "ns": "NS GAN", "ls": "LSGAN", "wgan": "WGAN", "wgan_gp": "WGAN GP",
         "dragan": "DRAGAN", "began": "BEGAN"}  # fmt: skip
TITLES = {"grid": "Grid of 25 Gaussians", "ring": "Ring of 8 Gaussians"}
LABELS = {"grid": "Grid (25 Gaussians)", "ring": "Ring (8 Gaussians)"}  # the report's names


def cell(row: pd.Series) -> str:
    """'value [CI]', bold for the best estimate, '<' for an arm shown worse."""
    text = f"{row['value']:.3f}"
    if math.isfinite(row["ci_low"]):
        text += f" [{row['ci_low']:.3f}, {row['ci_high']:.3f}]"
    return {"best": f"**{text}**", "worse": f"< {text}"}.get(row["mark"], text)


def study(dataset: str) -> list[str]:
    search, seeds = HERE / f"mixtures-{dataset}", HERE / f"mixtures-{dataset}-seeds"
    ranking = pd.read_csv(search / "report" / "ranking.csv")
    results = pd.read_csv(search / "results.csv")
    fresh = pd.read_csv(seeds / "results.csv")
    table = pd.read_csv(seeds / "report" / "w1_table.csv").set_index("model")
    refs = json.loads((search / "references.json").read_text())[dataset]
    budgets = [b for b in ranking["budget"].unique() if b != "all trials"]
    tested = [b for b in budgets if ranking.loc[ranking["budget"] == b, "mark"].isin(
              ["best", "in set", "worse"]).sum() >= 2]  # fmt: skip
    compute = ranking[ranking["budget"] == "compute"]
    heads = {b: (f"equal compute, {compute['budget_value'].iloc[0] / 1e12:.2f} TFLOP"
                 if b == "compute" else b) for b in tested}  # fmt: skip
    n = results.groupby("model").size().max()
    lines = [
        f"### {TITLES[dataset]}",
        "",
        f"Expected best W1 of k random settings [95% CI] (**bold**: best estimate; '<': worse "
        f"than another, family-wise 5%), the best of {n} trials, and the selected setting "
        f"re-run with {len(fresh) // fresh['model'].nunique()} fresh seeds. Lower is better: a "
        f"perfect sampler scores {refs['perfect']['w1']:.3f}, a uniform blur over the "
        f"mixture's box {refs['uniform']['w1']:.3f} ({refs['uniform']['modes']:.0f} modes, "
        f"{100 * refs['uniform']['hq']:.1f}% of samples within 3σ).",
        "",
        "| model | " + " | ".join(heads.values()) + f" | best of {n}: W1 · modes · HQ | "
        "fresh seeds: median W1 [95% CI] · median modes · median HQ |",
        "|---|" + "---|" * (len(heads) + 2),
    ]
    for model in ORDER:
        cells = []
        for budget in tested:
            row = ranking[(ranking["budget"] == budget) & (ranking["model"] == model)].iloc[0]
            cells.append(cell(row))
        ok = results[(results["model"] == model) & results["w1"].notna()]
        best = ok.loc[ok["w1"].idxmin()]
        cells.append(f"{best['w1']:.3f} · {best['modes']:.0f} · {100 * best['hq']:.0f}%")
        seed = table.loc[model]
        mine = fresh[fresh["model"] == model]
        cells.append(
            f"{seed['median_all']:.3f} [{seed['median_all_low']:.3f}, "
            f"{seed['median_all_high']:.3f}] · {mine['modes'].median():.0f} · "
            f"{100 * mine['hq'].median():.0f}%"
        )
        lines.append(f"| {NAMES[model]} | " + " | ".join(cells) + " |")
    answer = (search / "report" / "report.md").read_text().split("\n")
    verdicts = [line for line in answer if line.startswith(f"- {LABELS[dataset]} (")]
    return [*lines, "", *verdicts, ""]


def main() -> None:
    print("# Committed results: the 2-D mixture study\n")
    print("Each folder holds a sweep's results, its report (`report/report.md`, figures in PNG "
          "and SVG) and `RUN.md` (the command, commit and machine that made it). Rebuild any "
          "report with `python -m analysis results/<folder>`.\n")  # fmt: skip
    for dataset in ("grid", "ring"):
        print("\n".join(study(dataset)))


if __name__ == "__main__":
    main()
