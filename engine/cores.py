"""How many cores other processes leave free: the machine's busy time (/proc/stat) less this process's own.

The 1-minute load average, used before, counts this process's own last seconds too: a cold `cuesmith score`
that had just decoded its video on both cores read its own work as a busy machine and rendered the stems on
one core. Here the window is the time since the previous call (or since this module was imported; a call
within MIN_WINDOW_S of the previous one gets its answer), and what this process (and its finished
children) spent in it is taken out. Outside Linux, or when the window is under MIN_WINDOW_S or over
MAX_WINDOW_S (a server idle for hours), the load average stands in.
"""
from __future__ import annotations

import os
import time
from typing import NamedTuple, Optional

MIN_WINDOW_S = 0.2  # shorter windows are mostly clock-tick rounding
MAX_WINDOW_S = 30.0  # longer ones say little about now


class Sample(NamedTuple):
    wall: float  # time.monotonic()
    busy: float  # seconds all cores spent busy since boot
    own: float  # this process's CPU seconds, with its waited-for children


def sample() -> Optional[Sample]:
    try:
        with open("/proc/stat") as stat:
            ticks = [int(x) for x in stat.readline().split()[1:9]]  # user nice system idle iowait irq softirq steal
    except (OSError, ValueError):
        return None
    if len(ticks) < 5:
        return None
    times = os.times()
    busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")
    return Sample(time.monotonic(), busy, times.user + times.system + times.children_user + times.children_system)


_last: Optional[Sample] = sample()  # where the next window starts
_answer: Optional[tuple[float, float]] = None  # (when, free cores) of the previous call


def core_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def free_cores() -> float:
    """Cores that processes other than this one left idle since the last call, 0..core_count()."""
    global _last, _answer
    now, before = sample(), _last
    if now is not None and _answer is not None and now.wall - _answer[0] < MIN_WINDOW_S:
        return _answer[1]  # asked again at once: the same answer
    cores = core_count()
    if now is None or before is None or not MIN_WINDOW_S <= now.wall - before.wall <= MAX_WINDOW_S:
        try:
            free = max(0.0, cores - os.getloadavg()[0])
        except (AttributeError, OSError):  # no load average on this system
            free = float(cores)
    else:
        others = max(0.0, (now.busy - before.busy) - (now.own - before.own))
        free = min(float(cores), max(0.0, cores - others / (now.wall - before.wall)))
    if now is not None:
        _last, _answer = now, (now.wall, free)
    return free
