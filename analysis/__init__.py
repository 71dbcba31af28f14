"""Analysis of stored sweep results: tables, budget curves, statistics and a Markdown report.

Reads only `runs/<name>/results.csv` or `trials/*/result.json`; never imports the training
code, so a report can be rebuilt anywhere from the stored results.
"""

from analysis.load import load_results
from analysis.report import build_report
from benchmark.errors import ResultsError

__all__ = ["ResultsError", "build_report", "load_results"]
