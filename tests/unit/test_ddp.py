"""The DDP launcher's job boundaries: a failed rank is reported, a finished job's watcher stops, a started
rank dies with the process that started it."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from lightning.fabric.strategies.launchers.subprocess_script import _ChildProcessObserver
from lightning.pytorch.plugins.environments import LightningEnvironment

from archfuse import ddp
from archfuse.errors import RunFailed


def launcher_with(*codes: int) -> ddp.JobLauncher:
    launcher = ddp.JobLauncher(LightningEnvironment(), num_processes=len(codes) + 1, num_nodes=1)
    launcher.procs.extend(subprocess.Popen([sys.executable, "-c", f"raise SystemExit({c})"]) for c in codes)
    ddp.JobLauncher.spawned.append(launcher)
    return launcher


def test_end_job_names_the_rank_that_failed():
    launcher_with(0, 3)
    with pytest.raises(RunFailed, match=r"local rank 2 exited with code 3"):
        ddp.end_job()
    assert ddp.JobLauncher.spawned == []


def test_end_job_clears_the_environment_and_passes_when_ranks_succeed():
    os.environ.update(MASTER_PORT="12345", WORLD_SIZE="2")
    launcher_with(0)
    ddp.end_job()
    assert "MASTER_PORT" not in os.environ and "WORLD_SIZE" not in os.environ


def test_failed_job_kills_the_ranks_it_started_and_keeps_its_own_error():
    launcher = ddp.JobLauncher(LightningEnvironment(), num_processes=2, num_nodes=1)
    waiting = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])  # blocked in a collective
    launcher.procs.append(waiting)
    ddp.JobLauncher.spawned.append(launcher)
    start = time.monotonic()
    ddp.end_job(failed=True)  # no RunFailed: rank 0's own error is the one raised
    assert waiting.returncode == -signal.SIGKILL and time.monotonic() - start < 30
    assert ddp.JobLauncher.spawned == [] and launcher.procs == []


def test_finished_job_stops_lightnings_watcher():
    """Left watching, Lightning's observer SIGKILLs the main process (by then running the next job of a
    sweep) on its next poll after a rank of this job ended badly. end_job empties the list it watches."""
    victim = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        launcher = launcher_with(7)
        observer = _ChildProcessObserver(main_pid=victim.pid, child_processes=launcher.procs)
        with pytest.raises(RunFailed):
            ddp.end_job()
        assert launcher.procs == []
        assert observer._run() is True
        assert victim.poll() is None, "the observer killed the main process"
    finally:
        victim.kill()
        victim.wait()


def test_started_rank_dies_with_its_parent(tmp_path):
    pid_file = tmp_path / "child.pid"
    parent_code = textwrap.dedent(f"""
        import os, subprocess, sys, time
        child = '''
        import os, pathlib, time
        from archfuse.ddp import follow_parent
        follow_parent()
        pathlib.Path({str(pid_file)!r}).write_text(str(os.getpid()))
        time.sleep(120)
        '''
        env = {{**os.environ, "ARCHFUSE_RANK0_PID": str(os.getpid())}}
        subprocess.Popen([sys.executable, "-c", child], env=env)
        time.sleep(120)
    """)
    parent = subprocess.Popen([sys.executable, "-c", parent_code])
    try:
        deadline = time.monotonic() + 60
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline, "child never started"
            time.sleep(0.1)
        child_pid = int(pid_file.read_text())
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while alive(child_pid):
            assert time.monotonic() < deadline, "the child outlived its parent"
            time.sleep(0.1)
    finally:
        parent.kill()


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie awaiting its reaper counts as gone
        return stat.read().split(") ")[1][0] != "Z"
