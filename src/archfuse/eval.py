"""archfuse-eval ckpt=PATH: rebuild model and data from a checkpoint alone and test it."""

import sys
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from archfuse.command_line import refuse_bad_command_line
from archfuse.config_dir import config_dir
from archfuse.errors import ConfigError
from archfuse.process import exit_now, importable_cwd


def evaluate(cfg: dict[str, Any]) -> float:
    """Test the checkpoint's network on its data's test split (``data.*`` keys override the saved ones)."""
    from lightning.pytorch import Trainer

    from archfuse.build import build_datamodule, module_from_checkpoint
    from archfuse.trainer import quiet_lightning

    quiet_lightning(bool(cfg.get("quiet")))
    module = module_from_checkpoint(cfg["ckpt"], "ckpt")
    config = module.config
    dm = build_datamodule({**config, "data": {**config["data"], **(cfg.get("data") or {})}})
    dm.check_available()
    trainer = Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=not cfg.get("quiet"),
                      enable_model_summary=False, use_distributed_sampler=False, **cfg.get("trainer", {}))
    metrics = trainer.test(module, datamodule=dm, verbose=False)[0]
    print(f"checkpoint: {cfg['ckpt']}")
    for key in sorted(metrics):
        print(f"{key}: {float(metrics[key]):.4f}" if key != "test/samples" else f"{key}: {int(metrics[key])}")
    return float(metrics["test/acc"])


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="eval")
def _eval(cfg: DictConfig) -> float:
    try:
        if OmegaConf.is_missing(cfg, "ckpt"):
            raise ConfigError("ckpt", "missing: give the checkpoint to test, archfuse-eval ckpt=PATH")
        return evaluate(OmegaConf.to_container(cfg, resolve=True))
    except ConfigError as err:
        print(f"archfuse-eval: error: {err}", file=sys.stderr)
        sys.exit(2)


def main(fast_exit: bool = True) -> None:
    importable_cwd()
    refuse_bad_command_line("archfuse-eval", config_dir(), "eval")
    _eval()
    if fast_exit:
        exit_now(0)


if __name__ == "__main__":
    main()
