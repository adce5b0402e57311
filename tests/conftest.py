"""Shared helpers: run the real CLI in a fresh directory, compose configs in-process, find runs."""

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist-t10k"

# Under pytest-xdist the two workers share the 2 cores: one torch thread each, as the CLI runs get.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)

# A whole run on a small digits subset in a few seconds.
FAST = ["debug=fast", "quiet=true"]


def cli_env(threads: int = 1) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "HYDRA_FULL_ERROR": "0"}
    for key in [k for k in env if k.startswith(("SLURM_", "TORCHELASTIC_"))] + ["RANK", "LOCAL_RANK", "NODE_RANK"]:
        env.pop(key, None)  # the tests' processes are launched here, not by an outer launcher
    return env


def run_cli(cwd: Path, *args: str, entry: str = "archfuse.train", check: bool = True,
            timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m archfuse.train ARGS`` in ``cwd``, as a user would run it."""
    proc = subprocess.run([sys.executable, "-m", entry, *args], cwd=cwd, env=cli_env(), capture_output=True,
                          text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}\nSTDOUT:\n{proc.stdout[-4000:]}\nSTDERR:\n{proc.stderr[-4000:]}")
    return proc


def run_dirs(cwd: Path) -> list[Path]:
    """Run directories (those holding a summary.json) under ``cwd/outputs``, oldest first."""
    return sorted(p.parent for p in (cwd / "outputs").rglob("summary.json"))


def summary(run_dir: Path) -> dict:
    return json.loads((run_dir / "summary.json").read_text())


def compose_train(overrides: list[str], tmp_path: Path):
    """The config archfuse-train would run with these overrides, composed in-process."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import open_dict

    import archfuse.train  # noqa: F401  (registers the resolvers of the run directory)
    from archfuse.config_dir import config_dir

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    with open_dict(cfg):  # what Hydra's run mode fills in from the run directory
        cfg.paths.output_dir = str(tmp_path / "outputs")
        cfg.paths.run_dir = str(tmp_path / "outputs" / "run")
    return cfg


def model_config(name: str, **overrides) -> dict:
    """conf/model/<name>.yaml (the one place a model's option values are written down) with overrides."""
    from omegaconf import OmegaConf

    from archfuse.config_dir import config_dir

    return {**OmegaConf.to_container(OmegaConf.load(Path(config_dir()) / "model" / f"{name}.yaml")), **overrides}


def data_module(name: str = "digits", **overrides):
    """The data module of conf/data/<name>.yaml (the one place its option values are written down)."""
    from omegaconf import OmegaConf

    from archfuse.build import build_datamodule
    from archfuse.config_dir import config_dir

    node = OmegaConf.to_container(OmegaConf.load(Path(config_dir()) / "data" / f"{name}.yaml"))
    return build_datamodule({"data": {**node, **overrides}})


def plugin(group: str, name: str, **options):
    """The recipe or ensemble strategy of conf/<group>/<name>.yaml (a recipe chain's step of that name),
    its options as the YAML writes them, ``options`` changed; built as the run builds it."""
    from omegaconf import OmegaConf

    from archfuse.config_dir import config_dir
    from archfuse.instantiate import locate

    node = OmegaConf.to_container(OmegaConf.load(Path(config_dir()) / group / f"{name}.yaml"))
    node = node.get(name, node)  # conf/recipe/<name>.yaml holds a chain with the step under its name
    node.update(options)
    return locate(node, group)(**{k: v for k, v in node.items() if k != "_target_"})


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty working directory: runs land in its outputs/."""
    return tmp_path


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> SimpleNamespace:
    """One finished fast run (quiet, config tree printed) shared by tests that only read its results."""
    cwd = tmp_path_factory.mktemp("trained")
    proc = run_cli(cwd, *FAST, "model=seed003", "print_config=true")
    (run_dir,) = run_dirs(cwd)
    return SimpleNamespace(dir=run_dir, stdout=proc.stdout, stderr=proc.stderr)


@pytest.fixture(scope="session")
def trained_run(trained) -> Path:
    return trained.dir
