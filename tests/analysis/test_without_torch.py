"""The analysis reads results without torch: it and the results vocabulary never import it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

NO_TORCH = """
import sys

class NoTorch:  # any import of torch fails, as on a machine without it
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch is not installed here")

sys.meta_path.insert(0, NoTorch())
import analysis, analysis.__main__, benchmark.results, benchmark.best_setting, benchmark.errors
from analysis import build_report, load_results
assert "torch" not in sys.modules
print(len(benchmark.results.METRICS.names()))
"""


def test_the_analysis_and_the_results_vocabulary_import_without_torch():
    done = subprocess.run(
        [sys.executable, "-c", NO_TORCH], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == 6  # fid, kid, ipr, polygon, mixture, welfert
