"""The kernel a notebook runs in, watched: started over local IPC sockets with its
process kept, and when it dies, how it ended, the cell it was running and the memory
it last held (helpers.pipeline.run reports them)."""

import os
import signal
import tempfile

import psutil

from ..core.files import format_bytes


def ipc_kernel_manager(started):
    """A KernelManager whose kernels talk over local IPC sockets, not TCP: nothing
    listens on the network, and the kernel has no "running over TCP without
    encryption" warning to print once per notebook. Each kernel's process
    (subprocess.Popen) is appended to `started`, so that the runner can say how a
    kernel that died ended.

    It is the asyncio manager: papermill's client (nbclient) waits for the kernel's
    replies on an event loop and checks every second that the kernel is alive. The
    blocking manager's client blocks that loop, so a kernel killed mid-cell was
    waited for forever."""
    from jupyter_client.manager import AsyncKernelManager  # heavy: only a notebook run needs a kernel

    class IPCKernelManager(AsyncKernelManager):
        def __init__(self, **kw):
            kw.setdefault("transport", "ipc")
            kw.setdefault("ip", os.path.join(tempfile.gettempdir(), f"faiss-workbook-{os.getpid()}"))
            super().__init__(**kw)

        async def start_kernel(self, **kw):
            await super().start_kernel(**kw)
            started.append(self.provisioner.process)

    return IPCKernelManager


def how_it_ended(process):
    """How a kernel process (subprocess.Popen) ended: {"how": "killed by SIGKILL
    (signal 9)", "signal": "SIGKILL"} or {"how": "exited with status 1",
    "exit_status": 1}; None while it runs."""
    code = process.poll() if process is not None else None
    if code is None:
        return None
    if code < 0:
        sig = signal.Signals(-code).name
        return {"how": f"killed by {sig} (signal {-code})", "signal": sig}
    return {"how": f"exited with status {code}", "exit_status": code}


def last_memory(peak, died):
    """What the kernel last held, and for a SIGKILL the likely sender."""
    held = (f"it last held {format_bytes(peak.last_rss)} resident, "
            f"{format_bytes(peak.last_private)} private" if peak.last_rss else
            f"it died before its memory was first sampled ({peak.interval} s after the start)")
    if died.get("signal") != "SIGKILL":
        return held
    return (f"{held} of this machine's {format_bytes(psutil.virtual_memory().total)}. A SIGKILL "
            f"nobody sent is the out-of-memory killer's (dmesg names it): give the run more "
            f"memory or a smaller preset, and run the same command again to continue")


def running_cell(path):
    """The cell papermill was running when the kernel died, as "[5] (first line)"
    (its execution count) or "#2 (first line)" (its place in the notebook, when the
    kernel died before counting it), read from the partly executed notebook; "?" if
    it cannot be told."""
    import nbformat  # heavy: only executed notebooks need nbformat

    try:
        cells = nbformat.read(path, as_version=4).cells
    except (OSError, ValueError):
        return "?"
    started = [(i, c) for i, c in enumerate(cells) if c.cell_type == "code"
               and c.get("metadata", {}).get("papermill", {}).get("start_time")]
    if not started:
        return "?"
    i, cell = started[-1]
    first = next((line.strip() for line in cell.source.splitlines() if line.strip()), "")
    number = f"[{cell.execution_count}]" if cell.get("execution_count") else f"#{i + 1}"
    return f"{number} ({first[:60]})"
