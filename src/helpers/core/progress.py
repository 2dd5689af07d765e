"""Progress bars: tqdm's notebook bars when a person watches a notebook, plain text
lines on the runner's terminal when papermill runs it in batch.

helpers.pipeline.run sets BATCH_ENV for the kernels it starts and copies their stderr to
its own, so a 12-minute k-means or assignment pass shows its stage, progress and
ETA there instead of a frozen "Executing" bar.
"""

import os
import sys

# imported here, not when a bar starts: tqdm.auto pulls in IPython and ipywidgets
# (~6 MB), which would otherwise land inside the builds' measured memory peaks
from tqdm import tqdm as text_bar
from tqdm.auto import tqdm as auto_bar


BATCH_ENV = "FAISS_WORKBOOK_BATCH"
BATCH_INTERVAL_S = 20  # a line at most this often per bar: a log, not an animation


def tqdm(*args, **kwargs):
    """A tqdm bar (same arguments) suited to where the code runs."""
    if os.environ.get(BATCH_ENV):
        kwargs.setdefault("mininterval", BATCH_INTERVAL_S)
        kwargs.setdefault("file", sys.stderr)
        kwargs.setdefault("ascii", True)
        return text_bar(*args, **kwargs)
    return auto_bar(*args, **kwargs)
