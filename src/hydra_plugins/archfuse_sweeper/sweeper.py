"""The Hydra plugin: Hydra finds it in the ``hydra_plugins`` namespace package and builds it from
conf/hydra/sweeper/optuna.yaml; it only hands over to archfuse.sweep.runner."""

from typing import Any

from hydra.core.plugins import Plugins
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf


class ArchfuseSweeper(Sweeper):
    def __init__(self, **settings: Any) -> None:
        self.settings = {k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
                         for k, v in settings.items()}
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.launcher = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context = config, hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(hydra_context=hydra_context,
                                                                task_function=task_function, config=config)

    def sweep(self, arguments: list[str]) -> Any:
        from archfuse.sweep.runner import run_sweep

        return run_sweep(self, self.settings, list(arguments))
