"""SIGINT and SIGTERM to a real training process: it stops where it is, keeps every completed epoch in
last.ckpt, writes summary.json with status "interrupted", prints one line with the command that resumes,
and exits 130 or 143; that command finishes the run as if it had never stopped."""

import signal
import subprocess
import sys
import time

import jsonschema
import torch

from archfuse.summary import schema
from conftest import cli_env, run_cli, run_dirs, summary

# seed003 on 1,000 images, 6 epochs (the signal comes during the second or third, however fast the host);
# last.ckpt as by default (written at most once a minute), so the completed epoch the signal finds comes
# from the copy kept in memory.
EPOCHS = 6
ARGS = ["model=seed003", "data.train_subset=1000", "trainer.deterministic=true", "trainer.num_threads=1",
        "seed=7", "quiet=true", "cost.repeats=2", "cost.warmup=1"]


def interrupted(cwd, sig, epochs=EPOCHS):
    """Start the run, signal it once its first epoch is done, and wait for it to end."""
    command = [sys.executable, "-m", "archfuse.train", *ARGS, f"trainer.max_epochs={epochs}"]
    proc = subprocess.Popen(command, cwd=cwd, env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not list((cwd / "outputs").glob("runs/*/checkpoints/best.ckpt")):
        time.sleep(0.05)
    time.sleep(1.0)  # the epoch's state is kept right after best.ckpt
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=240)
    return proc.returncode, out, err


def test_sigint_keeps_the_completed_epochs_and_the_printed_command_resumes(tmp_path):
    whole = tmp_path / "whole"
    whole.mkdir()
    run_cli(whole, *ARGS, f"trainer.max_epochs={EPOCHS}")
    (whole_run,) = run_dirs(whole)

    cut = tmp_path / "cut"
    cut.mkdir()
    code, out, err = interrupted(cut, signal.SIGINT)
    assert code == 130, err
    (line,) = err.strip().splitlines()
    (run_dir,) = run_dirs(cut)
    s = summary(run_dir)
    assert s["status"] == "interrupted"
    jsonschema.validate(s, schema())
    stop = s["interruption"]
    assert stop["signal"] == "SIGINT" and 1 <= stop["epochs_done"] < EPOCHS, "the run ended before the signal"
    last = run_dir / "checkpoints" / "last.ckpt"
    assert stop["last_checkpoint"] == str(last)
    assert torch.load(last, map_location="cpu", weights_only=True)["epoch"] == stop["epochs_done"] - 1
    assert line == f"archfuse-train: interrupted by SIGINT; last.ckpt ({stop['epochs_done']} epoch" \
                   f"{'' if stop['epochs_done'] == 1 else 's'}): {last}; resume: {stop['resume']}"
    command = stop["resume"].split()
    assert command[0] == "archfuse-train" and command[-1] == f"ckpt_path={last}"

    resumed = tmp_path / "resumed"
    resumed.mkdir()
    run_cli(resumed, *command[1:])
    (resumed_run,) = run_dirs(resumed)
    done = summary(resumed_run)
    assert done["status"] == "ok" and done["training"]["epochs"] == EPOCHS
    # nothing was lost: the interrupted-and-resumed run is the uninterrupted one
    assert done["metrics"]["val/acc_best"] == summary(whole_run)["metrics"]["val/acc_best"]
    assert done["metrics"]["test/acc"] == summary(whole_run)["metrics"]["test/acc"]
    assert not (resumed_run / "checkpoints" / "last.ckpt").exists()  # keep_last_ckpt: false


def test_sigterm_is_an_interruption_too(tmp_path):
    code, out, err = interrupted(tmp_path, signal.SIGTERM, epochs=50)
    assert code == 143, err
    (run_dir,) = run_dirs(tmp_path)
    s = summary(run_dir)
    assert s["status"] == "interrupted" and s["interruption"]["signal"] == "SIGTERM"
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert err.strip().splitlines()[-1].startswith("archfuse-train: interrupted by SIGTERM; last.ckpt (")
