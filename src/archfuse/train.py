"""archfuse-train: compose the config, then hand it to archfuse.run. Imports nothing heavy until
the run starts, so ``--help`` answers at once."""

import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from archfuse.config_dir import config_dir, global_rank, register_resolvers
from archfuse.errors import ConfigError, RunFailed

register_resolvers()


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="train")
def _train(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig

    choices = {k: str(v) for k, v in HydraConfig.get().runtime.choices.items() if not k.startswith("hydra")}
    if cfg.get("print_config") and global_rank() == 0:
        from archfuse.report import print_config_tree

        print_config_tree(cfg)
    try:
        config = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
        from archfuse.run import train

        return train(config, choices, global_rank() == 0)
    except ConfigError as err:
        print(f"archfuse-train: error: {err}", file=sys.stderr)
        sys.exit(2)
    except RunFailed as err:
        print(f"archfuse-train: error: {err}", file=sys.stderr)
        sys.exit(1)


def main() -> None:
    _train()


if __name__ == "__main__":
    main()
