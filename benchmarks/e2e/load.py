"""How much of the machine other processes used while we timed: the check that a ratio is worth keeping.

Interleaving protects a ratio against drift that slows every implementation alike; it does not protect
it against another process competing for the cores, which slows implementations unequally (one that
wakes its thread pool hundreds of times per step waits for the scheduler each time). So bench.py reports,
per measurement, the other processes' share of all cores: the whole machine's busy time (/proc/stat)
minus this process's own CPU time (os.times), over wall time x cores. Near 0: the ratios stand alone.
Linux only; None elsewhere.
"""

import os
import time


class OtherLoad:
    """Context manager; ``fraction`` (0..1, or None off Linux) is set when the block ends."""

    fraction = None

    def __enter__(self):
        self._start = _sample()
        return self

    def __exit__(self, *exc):
        end = _sample()
        if self._start is not None and end is not None:
            (busy0, own0, wall0), (busy1, own1, wall1) = self._start, end
            cores = os.cpu_count()
            self.fraction = max(0.0, ((busy1 - busy0) - (own1 - own0)) / ((wall1 - wall0) * cores))
        return False


def _sample():
    """(seconds all cores were busy since boot, this process's CPU seconds, wall clock) or None."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    own = os.times()
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK"), own.user + own.system, time.monotonic()
