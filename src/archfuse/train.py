"""archfuse-train: compose the config, then hand it to archfuse.run. Imports nothing heavy until
the run starts, so ``--help`` answers at once."""

import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from archfuse.config_dir import config_dir, run_name
from archfuse.errors import ConfigError

OmegaConf.register_new_resolver("run_name", run_name, replace=True)


def is_rank_zero() -> bool:
    import os

    return all(os.environ.get(v, "0") == "0" for v in ("LOCAL_RANK", "NODE_RANK", "RANK"))


def print_config_tree(cfg: DictConfig) -> None:
    from rich.console import Console
    from rich.syntax import Syntax
    from rich.tree import Tree

    tree = Tree("config")
    for key, node in cfg.items():
        text = OmegaConf.to_yaml(node, resolve=True) if isinstance(node, DictConfig) else str(node)
        tree.add(str(key)).add(Syntax(text, "yaml"))
    Console().print(tree)


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="train")
def _train(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig

    choices = {k: str(v) for k, v in HydraConfig.get().runtime.choices.items() if not k.startswith("hydra")}
    if cfg.get("print_config") and is_rank_zero():
        print_config_tree(cfg)
    try:
        config = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
        from archfuse.run import train

        return train(config, choices, is_rank_zero())
    except ConfigError as err:
        print(f"archfuse-train: error: {err}", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    _train()


if __name__ == "__main__":
    main()
