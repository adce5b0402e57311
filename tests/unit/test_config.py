"""Every config option composes, in-process, and carries what its run needs."""

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from archfuse.config_dir import config_dir, run_name
from conftest import compose_train

CONF = Path(config_dir())


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF / group).glob("*.yaml"))


@pytest.mark.parametrize("group", ["data", "model", "trainer", "recipe", "ensemble", "logger", "callbacks",
                                   "debug", "experiment"])
def test_every_option_of_every_group_composes(group, tmp_path):
    assert options(group), f"conf/{group} is empty"
    for option in options(group):
        cfg = compose_train([f"{group}={option}"], tmp_path)
        container = OmegaConf.to_container(cfg, resolve=True)
        for key in ("data", "model", "trainer", "recipe", "ensemble", "optimizer"):
            assert "_target_" in container[key], (group, option, key)


def test_groups_mirror_packages():
    packages = Path(__file__).resolve().parents[2] / "src" / "archfuse"
    for group, package in {"data": "data", "model": "models", "recipe": "recipes", "ensemble": "ensembles"}.items():
        assert (packages / package / "__init__.py").is_file(), package
        for option in options(group):
            target = OmegaConf.load(CONF / group / f"{option}.yaml")["_target_"]
            assert target.startswith(f"archfuse.{package}."), (group, option, target)


def test_defaults_are_the_documented_ones(tmp_path):
    cfg = compose_train([], tmp_path)
    assert cfg.data._target_.endswith("DigitsDataModule")
    assert cfg.model._target_.endswith("Seed000")
    assert cfg.recipe._target_.endswith("NoRecipe") and cfg.ensemble._target_.endswith("NoEnsemble")
    assert cfg.optimizer._partial_ is True and cfg.logger.default_hp_metric is False
    assert cfg.paths.run_dir == str(tmp_path / "outputs" / "run")


def test_overrides_reach_the_model_config(tmp_path):
    cfg = compose_train(["model=convnet", "model.width=64", "model.depth=3", "model.activation=tanh"], tmp_path)
    assert (cfg.model.width, cfg.model.depth, cfg.model.activation) == (64, 3, "tanh")


def test_experiments_set_their_models(tmp_path):
    assert compose_train(["experiment=seed000_digits"], tmp_path).model._target_.endswith("Seed000")
    cfg = compose_train(["experiment=seed001_mnist"], tmp_path)
    assert cfg.model._target_.endswith("Seed001") and cfg.data._target_.endswith("MNISTDataModule")


def test_every_recorded_experiment_pins_its_precision(tmp_path):
    names = sorted(p.stem for p in (Path(__file__).resolve().parents[2] / "experiments").glob("*.yaml"))
    assert len(names) >= 10
    for name in names:  # not auto, whose choice depends on the host's CPU
        assert compose_train([f"experiment={name}"], tmp_path).trainer.precision == "32-true", name


def test_ddp_cpu_trainer_is_two_gloo_processes(tmp_path):
    cfg = compose_train(["trainer=ddp_cpu"], tmp_path)
    assert (cfg.trainer.devices, cfg.trainer.strategy, cfg.trainer.accelerator, cfg.trainer.num_threads) == (
        2, "ddp", "cpu", 1)


@pytest.mark.parametrize("overrides, expected", [
    ("", "default"),
    ("model.width-8+model-convnet", "model.width-8+model-convnet"),
    ("model.hidden_sizes-[64,32]", "model.hidden_sizes-64_32"),
    ("data.root-/tmp/x y", "data.root--tmp-xy"),
])
def test_run_names_are_readable_and_safe(overrides, expected):
    assert run_name(overrides) == expected


LAUNCH_VARS = ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID", "SLURM_JOB_ID", "SLURM_STEP_ID", "SLURM_NTASKS",
               "TORCHELASTIC_RUN_ID")


@pytest.mark.parametrize("env, stamp, rank", [
    ({}, "2026", 0),
    ({"SLURM_JOB_ID": "812", "SLURM_STEP_ID": "3", "SLURM_NTASKS": "8", "SLURM_PROCID": "5"}, "slurm-812.3", 5),
    ({"SLURM_JOB_ID": "812", "SLURM_STEP_ID": "0", "SLURM_NTASKS": "1", "SLURM_PROCID": "0"}, "2026", 0),  # one task
    ({"TORCHELASTIC_RUN_ID": "wide net/1", "RANK": "1", "LOCAL_RANK": "1"}, "torchrun-widenet-1", 1),
    ({"TORCHELASTIC_RUN_ID": "none", "RANK": "0"}, "2026", 0),  # torchrun without --rdzv-id
    ({"LOCAL_RANK": "1"}, "2026", 1),  # a rank archfuse started itself
    ({"LOCAL_RANK": "1", "SLURM_JOB_ID": "812", "SLURM_NTASKS": "1", "SLURM_PROCID": "0"}, "2026", 1),  # ... in SLURM
    ({"NODE_RANK": "1", "LOCAL_RANK": "0"}, "2026", 1),
])
def test_launch_stamp_is_shared_by_the_ranks_of_one_launch(monkeypatch, env, stamp, rank):
    from archfuse.ranks import global_rank, launch_stamp, on_rank_zero

    for var in LAUNCH_VARS:
        monkeypatch.delenv(var, raising=False)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    assert launch_stamp("%Y").startswith(stamp)
    assert global_rank() == rank
    assert on_rank_zero(".hydra") == (".hydra" if rank == 0 else None)


@pytest.mark.parametrize("rank", ["0", "1"])
def test_only_rank_zero_writes_hydra_files_and_log(monkeypatch, tmp_path, rank):
    for var in LAUNCH_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("RANK", rank)
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import open_dict

    import archfuse.train  # noqa: F401

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train", return_hydra_config=True)
    GlobalHydra.instance().clear()
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(tmp_path)
    log_file = cfg.hydra.job_logging.handlers.file.filename
    if rank == "0":
        assert cfg.hydra.output_subdir == ".hydra" and log_file == f"{tmp_path}/{cfg.hydra.job.name}.log"
    else:
        assert cfg.hydra.output_subdir is None and log_file == "/dev/null"


def test_the_slurm_launcher_composes_with_a_sweep():
    """hydra-submitit-launcher hands a batch of trials to SLURM (no cluster here: its config composes with a
    search space and n_jobs, and the launcher builds)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.utils import instantiate

    import archfuse.train  # noqa: F401  (registers the resolvers of the run directory)
    from archfuse.config_dir import config_dir

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train", overrides=["search=width_depth_activation", "hydra/launcher=submitit_slurm",
                                          "hydra.sweeper.n_jobs=4", "hydra.launcher.partition=batch",
                                          "hydra.launcher.timeout_min=90", "trainer.num_threads=4"],
                      return_hydra_config=True)
    GlobalHydra.instance().clear()
    assert cfg.hydra.sweeper._target_ == "hydra_plugins.archfuse_sweeper.sweeper.ArchfuseSweeper"
    assert cfg.hydra.sweeper.n_jobs == 4 and "model.width" in cfg.hydra.sweeper.params
    launcher = instantiate(cfg.hydra.launcher)
    assert type(launcher).__name__ == "SlurmLauncher"
    assert launcher.params["partition"] == "batch" and launcher.params["timeout_min"] == 90


@pytest.mark.parametrize("search", sorted(p.stem for p in (CONF / "search").glob("*.yaml")))
def test_every_search_option_composes_over_keys_the_run_has(search):
    """Each conf/search option selects archfuse's sweeper, and every key it searches exists in the composed
    run config (a misspelt key in a search file would otherwise fail only when a sweep starts)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    import archfuse.train  # noqa: F401  (registers the resolvers of the run directory)
    from archfuse.sweep.space import flatten_params, parse_space

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = compose("train", overrides=[f"search={search}"], return_hydra_config=True)
    GlobalHydra.instance().clear()
    assert cfg.hydra.sweeper._target_ == "hydra_plugins.archfuse_sweeper.sweeper.ArchfuseSweeper"
    space, _ = parse_space(flatten_params(OmegaConf.to_container(cfg.hydra.sweeper.params)), [])
    assert space.dims
    for key in space.dims:
        assert OmegaConf.select(cfg, key, default="missing") != "missing", f"search={search} searches {key}"
