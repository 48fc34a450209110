"""python -m pyddpm.report RUN: a training run folder as pictures and one self-contained HTML page.

runs reads the run folder, figures draws the pictures (matplotlib, imported only where it draws), page lays
out the HTML, command writes them (write_report) and is the command line (main, its --help the full story).
"""

from pyddpm.report.command import main, write_report
from pyddpm.report.runs import ReportError

__all__ = ["main", "write_report", "ReportError"]
