"""Publishing a finished sweep under results/: its records and report, no checkpoints."""

import pandas as pd

from analysis.publish import publish
from analysis.synthetic import make_sweep, write_sweep


def test_publish_copies_records_builds_the_report_and_says_how_it_was_made(tmp_path):
    frame = make_sweep(datasets=("polygons",), models=("ns", "wgan"), n_samples=4, seeds=False)
    sweep = write_sweep(frame, tmp_path / "sweep")
    trials = sorted((sweep / "trials").iterdir())
    for trial in trials:  # what a sweep leaves beside the records
        (trial / "generator.pt").write_bytes(b"weights")
        (trial / "metrics.jsonl").write_text("{}\n")
        (trial / "trial.json").write_text("{}")
    out = tmp_path / "results" / "sweep"
    run = publish(sweep, out, "python -m benchmark sweep runs/quick.toml", 125.0, "abc123")
    assert pd.read_csv(out / "results.csv").equals(pd.read_csv(sweep / "results.csv"))
    for trial in trials:
        kept = sorted(p.name for p in (out / "trials" / trial.name).iterdir())
        assert kept == ["result.json", "trial.json"]  # no checkpoint, no training log
    assert not list(out.rglob("generator.pt"))
    assert (out / "report" / "report.md").exists()
    text = run.read_text()
    assert "- Command: `python -m benchmark sweep runs/quick.toml`" in text
    assert "- Commit: `abc123`\n" in text
    assert "- Trials: 8" in text and "- Wall time: 2.1 min (125 s)" in text
