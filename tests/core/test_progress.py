"""Progress in batch goes to the log and nowhere else; in a session, bars are cleared."""

import io
import os
import subprocess
import sys
import textwrap

from helpers.core import progress

SCRIPT = textwrap.dedent("""
    import os
    from helpers.core import progress
    progress.c_stderr_to_log()
    for _ in progress.tqdm(range(3), desc="adding"):
        pass
    with progress.status("training IVF16"):
        pass
    os.write(2, b"WARNING clustering from C\\n")  # as faiss writes: to file descriptor 2
""")


def _python(code, env):
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60,
                         env={**os.environ, **env})
    # decoded by hand: text=True would turn a bar's carriage returns into newlines
    return out.returncode, out.stdout.decode(), out.stderr.decode()


def test_in_batch_bars_steps_and_c_messages_go_to_the_log_only(tmp_path):
    log = tmp_path / "progress.log"
    assert _python(SCRIPT, {progress.LOG_ENV: str(log)}) == (0, "", "")
    text = log.read_bytes().decode()
    assert "adding: 100%" in text and "3/3" in text
    assert "training IVF16 ...\n" in text and "training IVF16: done in" in text
    assert text.endswith("WARNING clustering from C\n")


def test_in_a_session_a_bar_is_cleared_when_done(tmp_path):
    code, _, stderr = _python(SCRIPT.replace("progress.c_stderr_to_log()", ""), {progress.LOG_ENV: ""})
    assert code == 0
    drawn = stderr.replace("WARNING clustering from C\n", "")
    assert "adding" in drawn and "training IVF16" in drawn  # drawn while working ...
    assert drawn.split("\r")[-1].strip() == ""  # ... and the line is blank when done


def test_the_runner_echoes_what_a_kernel_appends(tmp_path):
    log = tmp_path / "progress.log"
    log.write_text("an earlier stage\n")
    seen = io.StringIO()
    with progress.echoed(str(log), seen):
        assert _python(SCRIPT, {progress.LOG_ENV: str(log)})[0] == 0  # another process writes
    assert seen.getvalue() == log.read_bytes().decode()[len("an earlier stage\n"):]
    assert "training IVF16: done in" in seen.getvalue()
