"""Reports on training runs: Summary (summary.py), chart.png (chart.py), report.md
(markdown.py), and `summarize_paths` (build.py), which writes them all.

The issue named this `pipeline/report.py`; it is a package because the four jobs are
separate (numbers, picture, words, files).
"""

from pipeline.report.build import OUTPUTS, SummarizeResult, summarize_paths
from pipeline.report.summary import Summary, SummaryBuilder

__all__ = ["OUTPUTS", "SummarizeResult", "Summary", "SummaryBuilder", "summarize_paths"]
