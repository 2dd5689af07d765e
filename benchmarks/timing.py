"""Repeated timings for the benchmark scripts: a warm-up, then repeats; median and spread."""

import statistics
import time


def repeat(fn, repeats=5, warm_up=True):
    """Seconds of `repeats` calls of fn() after one discarded call: (median, min, max)."""
    if warm_up:
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), max(times)


def spread(t):
    """'median s [min-max]' of a repeat() result."""
    return f"{t[0]:8.2f} s [{t[1]:.2f}-{t[2]:.2f}]"


def ratio(num, den):
    """Ratio of medians and its range (worst and best pairing of the repeats)."""
    return f"{num[0] / den[0]:.2f} (range {num[1] / den[2]:.2f}-{num[2] / den[1]:.2f})"
