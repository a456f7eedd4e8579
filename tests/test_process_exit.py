"""The ``lrbench`` process's exit (``cli.entry``): out without the interpreter's teardown,
but only after atexit's handlers ran, with its output flushed and its exit code, and never
while another thread still works."""

from __future__ import annotations

import subprocess
import sys


def entry(tmp_path, before: str, *argv: str) -> subprocess.CompletedProcess:
    """``before`` (Python), then ``cli.entry()`` as the lrbench process runs it."""
    code = (
        f"import sys; from lrbench import cli; {before}; "
        f"sys.argv = ['lrbench', *{argv!r}]; cli.entry()"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )


def test_atexit_handlers_run_and_the_output_and_exit_code_are_kept(tmp_path):
    marker = tmp_path / "handler_ran"
    before = (
        f"import atexit, pathlib; atexit.register(pathlib.Path({str(marker)!r}).write_text, 'x')"
    )
    listed = entry(tmp_path, before, "list", "schedules")
    assert listed.returncode == 0 and "cosine" in listed.stdout
    assert marker.read_text() == "x"
    bad = entry(tmp_path, "pass", "list", "nonsense")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


def test_a_working_thread_is_waited_for(tmp_path):
    marker = tmp_path / "thread_done"
    before = (
        "import threading, time, pathlib; threading.Thread(target=lambda: (time.sleep(1), "
        f"pathlib.Path({str(marker)!r}).write_text('x'))).start()"
    )
    assert entry(tmp_path, before, "list").returncode == 0
    assert marker.read_text() == "x"


def test_an_unexpected_error_exits_as_python_does(tmp_path):
    before = "cli.main = lambda: 1 / 0"
    crashed = entry(tmp_path, before, "list")
    assert crashed.returncode == 1 and "ZeroDivisionError" in crashed.stderr


def test_a_reader_that_left_before_the_last_lines_is_no_error(tmp_path):
    """Output still buffered when ``main`` returns goes out at the exit's flush: a closed
    pipe there is a reader that left early, not a crash (as ``main`` treats it)."""
    before = (
        "import io, os; r, w = os.pipe(); os.close(r); "
        "sys.stdout = io.TextIOWrapper(io.BufferedWriter(io.FileIO(w, 'w')))"
    )
    done = entry(tmp_path, before, "list", "schedules")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
