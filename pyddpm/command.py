"""What the command lines share: one way an expected failure becomes a message and an exit code."""

import sys

EXIT_BAD_INPUT = 2  # a bad flag, file or setting, named in the message (argparse's code for its own errors)
EXIT_INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT, as a shell reports it


def run(work, expected):
    """(work(), 0); or, when work raises one of ``expected`` (exception types whose message names the
    problem) or runs out of memory, (None, 2) after "error: ..." on stderr; (None, 130) on Ctrl-C."""
    try:
        return work(), 0
    except expected as e:
        print(f"error: {e}", file=sys.stderr)
    except MemoryError:
        print("error: out of memory; try a smaller --batch-size", file=sys.stderr)
    except KeyboardInterrupt:
        return None, EXIT_INTERRUPTED
    return None, EXIT_BAD_INPUT
