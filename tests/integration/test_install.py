"""The project works installed from a built wheel (configs inside the package), from any directory."""

import os
import subprocess
import sys

from conftest import REPO, cli_env, run_dirs, summary


def test_wheel_install_runs_from_any_directory(tmp_path):
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(dist)], cwd=REPO,
                   check=True, capture_output=True, timeout=300)
    (wheel,) = dist.glob("archfuse-*.whl")
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    assert (target / "archfuse" / "conf" / "train.yaml").is_file()
    assert (target / "archfuse" / "conf" / "experiment" / "seed000_digits.yaml").is_file()
    # The wheel's package comes first on the path; a run in an unrelated directory uses it.
    env = {**cli_env(), "PYTHONPATH": str(target)}
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = subprocess.run([sys.executable, "-c", "import archfuse.config_dir as c; print(c.config_dir())"],
                           cwd=work, env=env, capture_output=True, text=True, check=True)
    assert where.stdout.strip() == str(target / "archfuse" / "conf")
    proc = subprocess.run([sys.executable, "-m", "archfuse.train", "debug=fast", "quiet=true",
                           "experiment=seed000_digits", "model=mlp"], cwd=work, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    (run,) = run_dirs(work)
    assert run.is_relative_to(work / "outputs" / "runs")
    assert summary(run)["config"]["model"]["_target_"] == "archfuse.models.mlp.MLP"
    assert summary(run)["versions"]["archfuse"]
    assert os.path.commonpath([run, work]) == str(work)
    # archfuse-compare is a console script of the wheel, and reads the run just made
    (entry_points,) = target.glob("archfuse-*.dist-info/entry_points.txt")
    assert "archfuse-compare = archfuse.compare:cli" in entry_points.read_text()
    table = subprocess.run([sys.executable, "-m", "archfuse.compare", "outputs", "--format", "csv"], cwd=work,
                           env=env, capture_output=True, text=True, timeout=60)
    assert table.returncode == 0 and table.stdout.startswith("run,"), table.stderr
    # The sweeper plugin ships in the wheel's hydra_plugins namespace package, and Hydra finds it there.
    assert (target / "hydra_plugins" / "archfuse_sweeper" / "sweeper.py").is_file()
    assert not (target / "hydra_plugins" / "__init__.py").exists()
    assert (target / "archfuse" / "conf" / "search" / "width_depth_activation.yaml").is_file()
    found = subprocess.run([sys.executable, "-c", "from hydra.core.plugins import Plugins; from hydra.plugins.sweeper "
                            "import Sweeper; print([f'{p.__module__}.{p.__name__}' for p in "
                            "Plugins.instance().discover(Sweeper)])"], cwd=work, env=env, capture_output=True,
                           text=True, check=True)
    assert "hydra_plugins.archfuse_sweeper.sweeper.ArchfuseSweeper" in found.stdout
    bad = subprocess.run([sys.executable, "-m", "archfuse.train", "-m", "search=width_depth_activation",
                          "hydra.sweeper.sampler=bayes"], cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "hydra.sweeper.sampler: unknown sampler 'bayes'" in bad.stderr
