"""Ctrl-C and kill (SIGTERM) during training: held while an update or a save is under way, never lost.

A signal that arrives inside ``deferred_interrupt()`` is delivered when the block ends, so the block (an
optimiser update, a checkpoint) is applied whole or not at all. ``terminate_as_interrupt()`` makes SIGTERM
raise KeyboardInterrupt like Ctrl-C, so `kill PID` also ends a run with a checkpoint.
Signal handlers can only be set from the main thread; elsewhere both are no-ops and a signal acts at once.
"""

import contextlib
import signal
import threading

_HELD = (signal.SIGINT, signal.SIGTERM)


def _main_thread():
    return threading.current_thread() is threading.main_thread()


@contextlib.contextmanager
def deferred_interrupt():
    """Hold SIGINT and SIGTERM (where Python handles them) until the block ends, then deliver them."""
    if not _main_thread():
        yield
        return
    caught = []
    previous = {}
    for signum in _HELD:
        handler = signal.getsignal(signum)
        if callable(handler):  # a signal Python code handles; the default (die) or "ignore" stays as it is
            previous[signum] = handler
            signal.signal(signum, lambda s, _frame: caught.append(s))
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(caught):
            previous[signum](signum, None)  # the handler of the time: KeyboardInterrupt for Ctrl-C


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


@contextlib.contextmanager
def terminate_as_interrupt():
    """Within the block, SIGTERM raises KeyboardInterrupt (as Ctrl-C does)."""
    if not _main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
