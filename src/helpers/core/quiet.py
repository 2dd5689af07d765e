"""faiss's C++ messages, captured and summarised instead of flooding the notebook.

faiss writes warnings such as ``WARNING clustering 2000 points to 256
centroids: please provide at least 9984 training points`` straight to the
process's stdout/stderr file descriptors, once per sub-quantizer: hundreds of
red lines in a notebook for one planning cell. ``captured()`` collects them
at the file-descriptor level (wurlitzer) and ``summary()`` turns them into one
line per kind of message.
"""

import collections
import contextlib
import re

from wurlitzer import pipes


@contextlib.contextmanager
def captured():
    """Capture what C/C++ code writes to stdout and stderr inside the block.

    Yields a list that holds, after the block, the captured lines (str).
    """
    lines = []
    with pipes() as (out, err):
        try:
            yield lines
        finally:  # what faiss said is kept when the block fails too
            for stream in (out, err):
                lines += [line for line in stream.read().splitlines() if line.strip()]


def summary(lines):
    """One sentence per kind of message (numbers folded), most frequent first,
    e.g. "faiss said 128 x: WARNING clustering N points to N centroids: please
    provide at least N training points"; "" when nothing was said."""
    kinds = collections.Counter(re.sub(r"\d+", "N", line.strip()) for line in lines)
    return "; ".join(f"faiss said {n} x: {kind}" if n > 1 else f"faiss said: {kind}"
                     for kind, n in kinds.most_common())
