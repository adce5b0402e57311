"""The recorded studies of experiments/ reproduce their accuracy (slow: run with -m slow)."""

import pytest

from conftest import SHARED_MNIST, run_cli, run_dirs, summary

pytestmark = pytest.mark.slow


def test_seed000_digits_reaches_its_recorded_accuracy(workdir):
    run_cli(workdir, "experiment=seed000_digits", "quiet=true", timeout=900)
    (run,) = run_dirs(workdir)
    metrics = summary(run)["metrics"]
    # docs/results.md: val/acc_best 0.9741, test/acc 0.9722 (seeded and deterministic).
    assert metrics["val/acc_best"] == pytest.approx(0.9741, abs=0.01)
    assert metrics["test/acc"] == pytest.approx(0.9722, abs=0.01)


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason=f"real MNIST not found at {SHARED_MNIST}")
def test_seed001_mnist_reaches_its_recorded_accuracy(workdir):
    import subprocess
    import sys

    from conftest import REPO, cli_env

    root = workdir / "mnist"
    subprocess.run([sys.executable, str(REPO / "bench" / "prepare_mnist.py"), "--out", str(root),
                    "--src", str(SHARED_MNIST)], check=True, env=cli_env(), capture_output=True)
    run_cli(workdir, "experiment=seed001_mnist", f"data.root={root}", "quiet=true", "trainer.num_threads=2",
            timeout=900)
    (run,) = run_dirs(workdir)
    metrics = summary(run)["metrics"]
    # docs/results.md: val/acc_best 0.9688, test/acc 0.9730 on 8,000 / 2,000 real MNIST images.
    assert metrics["test/acc"] == pytest.approx(0.9730, abs=0.01)
    assert metrics["test/samples"] == 2000
