"""Bad input stops the run before any data is loaded: one clear line naming the key, exit code 2,
no traceback, no run directory left behind. The table of bad values across every config group, the
sweeper and archfuse-eval is test_bad_values.py; here: bad input without quiet mode, in a sweep, and
in checkpoints a finished run wrote."""

import subprocess
import sys

from conftest import REPO, cli_env, run_cli, run_dirs, summary


def test_bad_config_prints_nothing_but_its_error(workdir):
    """Without quiet mode too: the Trainer built to check the config prints no device lines."""
    proc = run_cli(workdir, "optimizer.lr=-1", check=False)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout.strip() == "", proc.stdout
    assert proc.stderr.strip().splitlines()[-1].startswith("archfuse-train: error: optimizer: torch.optim.Adam")


def test_bad_job_in_a_sweep_fails_alone(workdir):
    """The other jobs of the sweep run; the bad one leaves no directory; the sweep ends with exit code 2."""
    proc = run_cli(workdir, "-m", "debug=fast", "quiet=true", "model=mlp", "model.hidden_sizes=[16]",
                   "trainer.max_epochs=1", "model.activation=relu,swish,tanh", check=False)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "error: 1 job(s) of the sweep failed:\n  #1 " in proc.stderr
    assert "model.activation: unknown activation 'swish'" in proc.stderr
    runs = run_dirs(workdir)
    assert [summary(r)["config"]["model"]["activation"] for r in runs] == ["relu", "tanh"]
    (sweep,) = (workdir / "outputs" / "multiruns").iterdir()
    assert sorted(p.name[0] for p in sweep.iterdir() if p.is_dir()) == ["0", "2"]


def test_bad_checkpoints_are_named(workdir, trained_run):
    truncated = workdir / "truncated.ckpt"
    truncated.write_bytes((trained_run / "checkpoints" / "best.ckpt").read_bytes()[:5000])
    proc = run_cli(workdir, f"ckpt={truncated}", "quiet=true", entry="archfuse.eval", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"ckpt: {truncated} is not a readable checkpoint (truncated" in proc.stderr
    proc = run_cli(workdir, f"ckpt_path={workdir / 'missing.ckpt'}", "quiet=true", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"ckpt_path: {workdir / 'missing.ckpt'} does not exist" in proc.stderr


def test_resume_from_another_architecture_is_refused(workdir, trained_run):
    best = trained_run / "checkpoints" / "best.ckpt"  # trained as seed003
    proc = run_cli(workdir, "model=seed000", f"ckpt_path={best}", "quiet=true", check=False)
    assert proc.returncode == 2
    assert "ckpt_path:" in proc.stderr and "resume with the config the checkpoint was trained with" in proc.stderr


def test_help_lists_groups_without_importing_torch():
    code = ("import sys; sys.argv = ['archfuse-train', '--help']\n"
            "import archfuse.train\n"
            "try:\n    archfuse.train.main()\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules and 'lightning' not in sys.modules, 'heavy import'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env(), timeout=60)
    assert proc.returncode == 0, proc.stderr
    for line in ("model: convnet, mlp, seed000, seed001, seed003", "trainer: cpu, ddp, ddp_cpu, default, gpu",
                 "data: cifar10, digits, fashion_mnist, folder, kmnist, mnist",
                 "recipe: cut, distill, grow, merge, none, prune, prune_channels, quantize, regularize",
                 "ensemble: bagging, cascade, concat, mean, none, stack, vote, weighted",
                 "scheduler: cosine, none, plateau, step",
                 "search: grid, mlp_layers, optimizer, pareto, width_depth_activation",
                 "experiment: " + ", ".join(sorted(p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml")))):
        assert line in proc.stdout


def test_a_gpu_asked_for_where_there_is_none_is_one_clear_line(workdir):
    import torch

    if torch.cuda.is_available():
        import pytest

        pytest.skip("a CUDA GPU is visible here")
    proc = run_cli(workdir, "trainer=gpu", "quiet=true", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "archfuse-train: error: trainer.accelerator: gpu asked for, but no CUDA GPU is visible "
        "(torch.cuda.is_available() is False): train on the CPU with trainer=default, or check the NVIDIA driver, "
        "the CUDA build of torch and CUDA_VISIBLE_DEVICES"]
    assert not (workdir / "outputs").exists()
