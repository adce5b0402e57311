"""A sweep stopped from outside, through the real CLI (slow): killed (SIGKILL), its stale trial retried by
the same command; interrupted (SIGINT), the trial recorded as failed and queued again."""

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import FAST, cli_env, run_cli, summary
from sweep_study import load, rows


@pytest.mark.slow
def test_killed_sweep_resumes_and_retries_the_stale_trial(workdir):
    args = ["-m", *FAST, "trainer.num_threads=1", "model=mlp", "hydra/sweeper=optuna", "hydra.sweeper.study_name=k",
            "model.activation=choice(relu,tanh,gelu)", "hydra.sweeper.n_trials=3", "hydra.sweeper.seed=0",
            "hydra.sweeper.heartbeat_interval=1", "hydra.sweeper.grace_period=2", "trainer.max_epochs=30"]
    proc = subprocess.Popen([sys.executable, "-m", "archfuse.train", *args], cwd=workdir, env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    trials = workdir / "outputs" / "sweeps" / "k" / "trials"
    deadline = time.time() + 240
    while time.time() < deadline and not list(trials.glob("000_*/summary.json")):
        time.sleep(0.5)
    while time.time() < deadline and len(list(trials.glob("001_*/events.out.*"))) == 0:
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)  # trial 1 is training: it stays RUNNING in the study
    proc.wait()
    study = load(trials.parent)
    assert [t.state.name for t in study.get_trials()] == ["COMPLETE", "RUNNING"]
    time.sleep(3)  # past the grace period
    again = run_cli(workdir, *args[:-1], "trainer.max_epochs=1", "hydra.sweeper.rerun_repeats=true")
    trials_now = load(trials.parent).get_trials()
    states = [t.state.name for t in trials_now]
    assert states == ["COMPLETE", "FAIL", "COMPLETE", "COMPLETE"]
    assert trials_now[2].params == trials_now[1].params  # retried once, with the same parameters
    assert trials_now[2].system_attrs["failed_trial"] == 1
    assert "3/3 trials (3 complete, 0 pruned, 0 failed; 2 run now" in again.stdout
    names = sorted(p.name[:3] for p in trials.iterdir())
    assert names == ["000", "001", "002", "003"]  # the killed trial's directory is kept, not reused
    assert "no heartbeat); run again as trial 2" in rows(trials.parent)[1]["error"]


@pytest.mark.slow
def test_interrupted_sweep_records_the_trial_and_the_same_command_continues(workdir):
    args = ["-m", *FAST, "trainer.num_threads=1", "model=mlp", "hydra/sweeper=optuna", "hydra.sweeper.study_name=i",
            "model.activation=choice(relu,tanh,gelu)", "hydra.sweeper.n_trials=2", "hydra.sweeper.seed=0",
            "trainer.max_epochs=30"]
    proc = subprocess.Popen([sys.executable, "-m", "archfuse.train", *args], cwd=workdir, env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    trials = workdir / "outputs" / "sweeps" / "i" / "trials"
    deadline = time.time() + 240
    while time.time() < deadline and not list(trials.glob("000_*/checkpoints/best.ckpt")):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)  # Ctrl-C while trial 0 trains
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 130, err
    assert err.strip().splitlines()[-1] == ("archfuse-train: sweep i interrupted by SIGINT: trial(s) 0 recorded as "
                                            "failed (interrupted) and queued again; the same command continues the study")
    first = load(trials.parent).get_trials()
    assert [t.state.name for t in first] == ["FAIL", "WAITING"] and first[0].user_attrs["error"] == "interrupted"
    (run,) = trials.glob("000_*")
    assert summary(run)["status"] == "interrupted"
    again = run_cli(workdir, *args[:-1], "trainer.max_epochs=1")
    done = load(trials.parent).get_trials()
    assert [t.state.name for t in done] == ["FAIL", "COMPLETE", "COMPLETE"]
    assert done[1].params == done[0].params  # the interrupted point runs first
    assert "2/2 trials (2 complete, 0 pruned, 0 failed; 2 run now" in again.stdout
    assert rows(trials.parent)[0]["error"] == "interrupted; run again as trial 1"
