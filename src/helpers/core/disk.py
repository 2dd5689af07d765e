"""Disk a run really uses: the allocated size of its folders, sampled while it runs.

Sizes are the blocks the file system allocated (st_blocks x 512), not the files'
apparent sizes: a sparse file (a dataset file created at its full size and filled
chunk by chunk) takes only what has been written, and that is what fills a disk.
"""

import os
import threading


def folder_bytes(*folders):
    """Allocated bytes (int) of every file under `folders` (each file once, however
    many of the folders hold it or however many hard links it has); a folder that
    does not exist counts 0, and a file removed while it is counted is skipped."""
    seen, total = set(), 0
    for folder in folders:
        for root, _, names in os.walk(folder):
            for name in names:
                try:
                    st = os.lstat(os.path.join(root, name))
                except OSError:  # removed between the listing and the look
                    continue
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_blocks * 512
    return total


class DiskTrace:
    """Context manager sampling folder_bytes(*folders) every `interval` seconds
    while a block runs. `stage` (set by the caller as the block goes on) names
    what runs; peak is the largest sample and peak_stage the stage it was taken
    in; last is the latest sample."""

    def __init__(self, folders, interval=2.0, stage=None):
        self.folders, self.interval, self.stage = list(folders), interval, stage
        self._stop, self._lock = threading.Event(), threading.Lock()

    def sample(self):
        """Take one sample now; returns it."""
        size = folder_bytes(*self.folders)
        with self._lock:  # the sampling thread and the caller's own samples
            self.last = size
            if size > self.peak:
                self.peak, self.peak_stage = size, self.stage
        return size

    def __enter__(self):
        self.peak, self.peak_stage = -1, None
        self.sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(self.interval):
            self.sample()

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.sample()
        return False
