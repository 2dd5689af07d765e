"""Measuring resident memory (RSS) of this process, or of its children.

Peak RSS comes from the kernel's own high-water mark (VmHWM in
/proc/self/status), reset at the start of a measurement by writing 5 to
/proc/self/clear_refs; where that is not allowed, from samples taken every
`interval` seconds with psutil. A trace of (seconds, bytes) samples is kept
for plotting. Figures are reported with the baseline (RSS at the start)
subtracted, so they show what the measured work added.
"""

import ctypes
import re
import threading
import time

import psutil


def current_rss():
    """Resident memory of this process now, in bytes."""
    return psutil.Process().memory_info().rss


def _hwm():
    try:
        with open("/proc/self/status") as f:
            return int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1)) * 1024
    except (OSError, AttributeError):
        return None


def reset_peak():
    """Reset the kernel's peak-RSS mark; False where the system does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def release_free_memory():
    """Hand freed heap memory back to the OS (glibc malloc_trim), so RSS
    measured afterwards shows live data rather than allocator leftovers."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class RSSTrace:
    """Context manager recording RSS while a block runs.

    After the block: baseline (bytes at entry), peak (highest RSS seen),
    peak_delta = peak - baseline, end_delta = RSS at exit - baseline, trace,
    a list of (seconds since entry, RSS bytes), and peak_private: the highest
    sampled RSS less its file-backed and shared pages (psutil's `shared`):
    memory the process holds itself, where RSS also counts the page cache of
    files it maps (a memory-mapped index), which the OS can drop, and shared
    memory. last_rss, last_private: the latest sample in which the measured
    processes were alive (what a kernel held just before it was killed).
    children=True measures this process's children instead (summed; sampled
    only: the kernel's mark is per process), e.g. the kernels a notebook runner
    starts.
    """

    def __init__(self, interval=0.05, children=False):
        self.interval, self.children = interval, children
        self.trace = []
        self._stop = threading.Event()

    def __enter__(self):
        release_free_memory()
        self._kernel_peak = not self.children and reset_peak()
        self.peak_private = self.last_rss = self.last_private = 0
        self.baseline = self._rss()
        self._t0 = time.perf_counter()
        self.trace = [(0.0, self.baseline)]
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _rss(self):
        procs = psutil.Process().children(recursive=True) if self.children else [psutil.Process()]
        total = private = 0
        for proc in procs:
            try:
                m = proc.memory_info()
            except psutil.Error:  # ended between the listing and the read
                continue
            total += m.rss
            private += m.rss - getattr(m, "shared", 0)
        self.peak_private = max(self.peak_private, private)
        if total:
            self.last_rss, self.last_private = total, private
        return total

    def _sample(self):
        while not self._stop.wait(self.interval):
            self.trace.append((time.perf_counter() - self._t0, self._rss()))

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        end = self._rss()
        self.trace.append((time.perf_counter() - self._t0, end))
        sampled = max(r for _, r in self.trace)
        hwm = _hwm() if self._kernel_peak else None
        self.peak = max(sampled, hwm or 0)
        self.peak_delta = self.peak - self.baseline
        self.end_delta = end - self.baseline
        self.method = "kernel VmHWM" if hwm else f"psutil samples every {self.interval}s"
        return False
