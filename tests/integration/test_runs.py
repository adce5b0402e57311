"""Whole runs through the real CLI: artefacts, resume after a kill, eval, DDP on CPU, multirun."""

import signal
import socket
import subprocess
import sys
import time

import pytest
import torch

from conftest import FAST, cli_env, run_cli, run_dirs, summary


def test_a_run_leaves_config_checkpoints_events_and_summary(trained_run):
    s = summary(trained_run)
    assert s["status"] == "ok"
    assert set(s["metrics"]) >= {"val/acc_best", "test/acc", "val/loss", "test/loss"}
    assert 0.0 <= s["metrics"]["test/acc"] <= 1.0 and s["metrics"]["test/samples"] == 360
    assert s["cost"]["params"] == 421642  # seed003 on 1x28x28: 320 + 18496 + 401536 + 1290
    assert s["cost"]["macs"] > s["cost"]["params"] and s["cost"]["latency_ms"] > 0
    assert s["cost"]["size_bytes"] == 4 * s["cost"]["params"]
    assert s["config"]["model"]["_target_"] == "archfuse.models.seed003.Seed003"
    matrix = torch.tensor(s["confusion_matrix"])  # test split: rows true, columns predicted
    assert matrix.shape == (10, 10) and matrix.sum() == 360
    assert matrix.trace().item() / 360 == pytest.approx(s["metrics"]["test/acc"], abs=1e-6)
    assert s["versions"]["torch"] == torch.__version__.split("+")[0]
    assert (trained_run / ".hydra" / "config.yaml").is_file()
    assert {p.name for p in (trained_run / "checkpoints").iterdir()} == {"best.ckpt"}  # keep_last_ckpt: false
    assert list(trained_run.glob("events.out.tfevents.*"))
    assert "model-seed003" in trained_run.name and "debug-fast" in trained_run.name


def test_quiet_mode_prints_the_config_tree_and_the_summary_only(trained, trained_run):
    out = trained.stdout
    assert "config" in out and "_target_: archfuse.models.seed003.Seed003" in out  # print_config=true
    assert "archfuse run" in out and "test/acc" in out
    assert f"run directory: {trained_run}\n" in out  # whole, on one line
    assert "Epoch 0" not in out and "GPU available" not in out + trained.stderr  # no progress bar, no chatter


def test_eval_rebuilds_from_the_checkpoint_alone(workdir, trained_run):
    proc = run_cli(workdir, f"ckpt={trained_run / 'checkpoints' / 'best.ckpt'}", "quiet=true", entry="archfuse.eval")
    lines = dict(line.split(": ", 1) for line in proc.stdout.splitlines() if line.startswith("test/"))
    assert float(lines["test/acc"]) == pytest.approx(summary(trained_run)["metrics"]["test/acc"], abs=1e-4)
    assert int(lines["test/samples"]) == 360


def _state(path):
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


def test_resume_after_a_kill_matches_an_uninterrupted_run(tmp_path):
    args = ["model=seed003", "data.train_subset=600", "trainer.max_epochs=4", "trainer.deterministic=true",
            "trainer.num_threads=1", "seed=7", "quiet=true", "cost.repeats=2", "cost.warmup=1",
            "callbacks.resume_checkpoint.every_seconds=0",  # last.ckpt after every epoch, for the kill below
            "keep_last_ckpt=true"]  # kept after the run, to compare the whole training state
    whole = tmp_path / "whole"
    whole.mkdir()
    run_cli(whole, *args)
    (whole_run,) = run_dirs(whole)

    cut = tmp_path / "cut"
    cut.mkdir()
    proc = subprocess.Popen([sys.executable, "-m", "archfuse.train", *args], cwd=cut, env=cli_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    last = None
    while time.monotonic() < deadline and last is None:
        found = list((cut / "outputs").glob("runs/*/checkpoints/last.ckpt"))
        last = found[0] if found else None
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # stop the run right after its first epoch's checkpoint
    proc.wait()
    assert last is not None, "no checkpoint after the first epoch"
    assert not (last.parent.parent / "summary.json").exists()
    epoch = torch.load(last, map_location="cpu", weights_only=True)["epoch"]
    assert epoch < 3, "the run finished before it could be killed"

    run_cli(cut, *args, f"ckpt_path={last}")
    (resumed_run,) = run_dirs(cut)
    assert summary(resumed_run)["metrics"]["val/acc_best"] == summary(whole_run)["metrics"]["val/acc_best"]
    a, b = _state(whole_run / "checkpoints" / "last.ckpt"), _state(resumed_run / "checkpoints" / "last.ckpt")
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name


def test_ddp_on_two_cpu_processes_covers_each_sample_once(workdir):
    run_cli(workdir, *FAST, "trainer=ddp_cpu", "model=seed003", "trainer.limit_val_batches=null",
            "trainer.limit_test_batches=null")
    (run_dir,) = run_dirs(workdir)
    assert len(list((workdir / "outputs" / "runs").iterdir())) == 1  # one directory for both ranks
    s = summary(run_dir)
    assert s["metrics"]["test/samples"] == 360  # the whole test split, each sample once
    assert sorted(p.name for p in run_dir.glob("*.log")) == ["train.log"]  # rank 1 wrote no files of its own
    # Rank-synced test accuracy equals a single-process evaluation of the same checkpoint.
    proc = run_cli(workdir, f"ckpt={run_dir / 'checkpoints' / 'best.ckpt'}", "quiet=true", entry="archfuse.eval")
    acc = float(next(l for l in proc.stdout.splitlines() if l.startswith("test/acc:")).split(": ")[1])
    assert acc == pytest.approx(s["metrics"]["test/acc"], abs=1e-4)


@pytest.mark.slow
def test_ddp_inside_multirun_gives_one_directory_per_job(workdir):
    run_cli(workdir, "-m", *FAST, "trainer=ddp_cpu", "model=convnet", "model.width=4,8")
    runs = run_dirs(workdir)
    assert len(runs) == 2
    assert len(list(runs[0].parent.iterdir())) == 2 + 1  # two jobs + multirun.yaml
    widths = sorted(summary(r)["config"]["model"]["width"] for r in runs)
    assert widths == [4, 8]
    assert all(summary(r)["metrics"]["test/samples"] == 360 for r in runs)


CRASHING_NET = """
import os

import torch
from torch import nn


class CrashingNet(nn.Module):
    def __init__(self, in_channels, num_classes, input_size):
        super().__init__()
        self.fc = nn.Linear(in_channels * input_size[0] * input_size[1], num_classes)
        self.steps = 0

    def forward(self, x):
        if self.training and torch.is_grad_enabled():
            self.steps += 1
            if self.steps == 2 and os.environ.get("LOCAL_RANK") == "1":
                os._exit(3)  # rank 1 dies in its second training step
        return self.fc(x.flatten(1))
"""


@pytest.mark.slow
def test_ddp_rank_crash_ends_the_run_and_is_named(workdir):
    (workdir / "crashing_net.py").write_text(CRASHING_NET)  # a user's own module, importable from the cwd
    proc = run_cli(workdir, *FAST, "trainer=ddp_cpu", "model._target_=crashing_net.CrashingNet", check=False,
                   timeout=240)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "archfuse-train: DDP local rank 1 exited with code 3 (its output is above)" in proc.stderr
    assert run_dirs(workdir) == []  # nothing marked as a good run


@pytest.mark.slow
def test_torchrun_ranks_share_one_run_directory(workdir):
    """torchrun starts both ranks itself (as on each node of docs/distributed.md's multi-node command); each
    composes its config, and both pick the directory named after the rendezvous id."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
                "--node-rank", "0", "--master-addr", "127.0.0.1", "--master-port", str(port), "--rdzv-id", "wide_net_1", "-m", "archfuse.train", *FAST, "trainer=ddp_cpu", "model=seed003"]
    proc = subprocess.run(torchrun, cwd=workdir, env=cli_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run_dir,) = (workdir / "outputs" / "runs").iterdir()
    assert run_dir.name == "torchrun-wide_net_1_debug-fast+model-seed003+trainer-ddp_cpu"
    assert summary(run_dir)["metrics"]["test/samples"] == 360
    assert sorted(p.name for p in run_dir.glob("*.log")) == ["train.log"] and (run_dir / ".hydra").is_dir()


def test_cross_validation_inside_multirun(workdir):
    run_cli(workdir, "-m", *FAST, "cv.folds=2", "model=seed003", "seed=1,2")
    runs = run_dirs(workdir)
    assert [summary(r)["config"]["seed"] for r in runs] == [1, 2]
    for r in runs:
        cv = summary(r)["cv"]
        assert [f["fold"] for f in cv["folds"]] == [0, 1]
        assert (r / "fold_0" / "checkpoints" / "best.ckpt").is_file() and (r / "fold_1").is_dir()
