"""The default sweeper of a multirun (``-m key=a,b``) is Hydra's basic sweeper with each job's config
composed once: the batch check composes it, the launcher gets a copy of that config."""

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from archfuse.config_dir import config_dir
from hydra_plugins.archfuse_sweeper.compose_once import ComposeOnceLoader


class CountingLoader:
    option = "kept"

    def __init__(self):
        self.calls = []

    def load_sweep_config(self, master_config, sweep_overrides):
        self.calls.append(list(sweep_overrides))
        return OmegaConf.create({"overrides": list(sweep_overrides), "hydra": {"job": {"num": 0}}})


def test_the_launcher_gets_the_config_the_batch_check_composed():
    inner = CountingLoader()
    loader = ComposeOnceLoader(inner)
    batch = [["seed=1"], ["seed=2"]]
    checked = [loader.load_sweep_config(None, job) for job in batch]  # Hydra's check of the batch
    launched = [loader.load_sweep_config(None, job) for job in batch]  # the launcher, job by job
    assert inner.calls == batch  # each job composed once
    assert launched == checked and launched[0] is not checked[0]
    launched[0].hydra.job.num = 1  # the launcher numbers its copy
    assert checked[0].hydra.job.num == 0
    loader.load_sweep_config(None, ["seed=1"])  # asked again later: composed again
    assert inner.calls == [*batch, ["seed=1"]]
    assert loader.option == "kept"  # everything else is the loader's own


def test_it_is_the_default_sweeper_and_optuna_searches_keep_theirs():
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            plain = compose("train", overrides=[], return_hydra_config=True)
            search = compose("train", overrides=["search=optimizer"], return_hydra_config=True)
    finally:
        GlobalHydra.instance().clear()
    assert plain.hydra.sweeper._target_ == "hydra_plugins.archfuse_sweeper.compose_once.ComposeOnceSweeper"
    assert search.hydra.sweeper._target_ == "hydra_plugins.archfuse_sweeper.sweeper.ArchfuseSweeper"
