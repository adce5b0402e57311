"""The recorded studies of experiments/ reproduce their figures in docs/results.md (slow: -m slow).

The digits study runs whole (5 seeds) and must meet its target; the MNIST studies, which take minutes
per seed, run their first seed (42) and must reproduce its recorded accuracy. Runs are seeded and
deterministic; the tolerance covers another CPU's kernels (bf16 rounding differs between instruction
sets), not noise.
"""

import subprocess
import sys

import pytest

from conftest import REPO, SHARED_MNIST, cli_env, run_cli, run_dirs, summary

pytestmark = pytest.mark.slow
needs_mnist = pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason=f"real MNIST not found at {SHARED_MNIST}")

# docs/results.md, seed 42 of each MNIST study: test/acc on the 2,000 test images.
MNIST_SEED_42 = {"seed001_mnist": 0.9905, "seed003_mnist": 0.9915, "seed000_mnist": 0.9925}
TOLERANCE = 0.004  # eight test images of 2,000


@pytest.mark.timeout(1800)  # five seeds: longer than the suite's 600 s per test on a slow host
def test_seed000_digits_reaches_its_target(workdir):
    run_cli(workdir, "experiment=seed000_digits", "quiet=true", "trainer.num_threads=2", timeout=1800)
    (run,) = run_dirs(workdir)
    s = summary(run)
    assert len(s["seeds"]["runs"]) == 5
    # docs/results.md: test/acc 0.9933 +- 0.0058 over seeds 42..46 (32-true); the target is a mean of at least 0.992.
    assert s["metrics"]["test/acc"] >= 0.992
    assert s["metrics"]["test/acc"] == pytest.approx(0.9933, abs=0.003)


@pytest.fixture(scope="module")
def mnist_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("mnist")
    subprocess.run([sys.executable, str(REPO / "bench" / "prepare_mnist.py"), "--out", str(root),
                    "--src", str(SHARED_MNIST)], check=True, env=cli_env(), capture_output=True)
    return root


@needs_mnist
@pytest.mark.timeout(1800)
@pytest.mark.parametrize("experiment", sorted(MNIST_SEED_42))
def test_mnist_study_reproduces_its_first_seed(workdir, mnist_root, experiment):
    run_cli(workdir, f"experiment={experiment}", f"data.root={mnist_root}", "seeds=1", "quiet=true",
            "trainer.num_threads=2", timeout=1800)
    (run,) = run_dirs(workdir)
    metrics = summary(run)["metrics"]
    assert metrics["test/samples"] == 2000
    assert metrics["test/acc"] == pytest.approx(MNIST_SEED_42[experiment], abs=TOLERANCE)
