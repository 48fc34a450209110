"""python -m pyddpm.report RUN: runs pyddpm.report.command.main and exits with its code."""

import sys

from pyddpm.report.command import main

if __name__ == "__main__":
    sys.exit(main())
