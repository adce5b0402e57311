"""archfuse-eval ckpt=PATH: rebuild model and data from a checkpoint alone and test it."""

import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from archfuse.config_dir import config_dir
from archfuse.errors import ConfigError


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="eval")
def _eval(cfg: DictConfig) -> float:
    try:
        from archfuse.evaluate import evaluate

        return evaluate(OmegaConf.to_container(cfg, resolve=True))
    except ConfigError as err:
        print(f"archfuse-eval: error: {err}", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    _eval()


if __name__ == "__main__":
    main()
