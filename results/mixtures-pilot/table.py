"""The pilot's table: per model, the best trial's modes, HQ share and W1 at each checkpoint.

cd results/mixtures-pilot
python table.py pilot > pilot.md
python table.py pilot-ring > pilot-ring.md
"""

import json
import sys
from pathlib import Path

import pandas as pd

ORDER = ["mm", "ns", "ls", "wgan", "wgan_gp", "dragan", "began"]


def checkpoints(sweep: Path) -> pd.DataFrame:
    rows = []
    for path in sorted(sweep.glob("trials/*/result.json")):
        record = json.loads(path.read_text())
        for point in record.get("checkpoints", []):
            rows.append({"model": record["model"], "lr": record["lr"], "trial": path.parent.name,
                         "batch": record["batch_size"], **point})  # fmt: skip
    return pd.DataFrame(rows)


def main(sweep: Path) -> None:
    frame = checkpoints(sweep)
    # Checkpoints fall on whole epochs: 6.4 epochs of 390.625 steps end at step 2,501.
    frame["d_steps"] = (frame["d_steps"] / 250).round().astype(int) * 250
    print(f"Pilot `{sweep}`: batch {frame['batch'].iloc[0]}, {frame['trial'].nunique()} trials.")
    print("Each cell: the best trial by W1 at that length: modes / HQ % / W1 (lr).\n")
    steps = sorted(frame["d_steps"].unique())
    print("| model | " + " | ".join(f"{s:,} steps" for s in steps) + " |")
    print("|---|" + "---|" * len(steps))
    for model in [m for m in ORDER if m in set(frame["model"])]:
        cells = []
        for s in steps:
            part = frame[(frame["model"] == model) & (frame["d_steps"] == s)].dropna(subset=["w1"])
            if part.empty:
                cells.append("—")
                continue
            best = part.loc[part["w1"].idxmin()]
            cells.append(f"{best['modes']:.0f} / {100 * best['hq']:.0f}% / {best['w1']:.3f} "
                         f"({best['lr']:.1e})")  # fmt: skip
        print(f"| {model} | " + " | ".join(cells) + " |")
    print("\nMost modes and HQ share of any trial at each length:\n")
    print("| model | " + " | ".join(f"{s:,}" for s in steps) + " |")
    print("|---|" + "---|" * len(steps))
    for model in [m for m in ORDER if m in set(frame["model"])]:
        cells = []
        for s in steps:
            part = frame[(frame["model"] == model) & (frame["d_steps"] == s)]
            cells.append(f"{part['modes'].max():.0f} / {100 * part['hq'].max():.0f}%")
        print(f"| {model} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
