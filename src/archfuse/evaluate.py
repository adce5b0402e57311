"""Test a saved model: everything needed comes from the checkpoint (loaded with weights_only)."""

from typing import Any

from lightning.pytorch import Trainer

from archfuse.checkpoint import read_checkpoint
from archfuse.errors import ConfigError
from archfuse.module import ClassifierModule
from archfuse.training import quiet_lightning
from archfuse.validate import build_datamodule


def load_module(path: str) -> ClassifierModule:
    """The trained network of an archfuse checkpoint, rebuilt from the run config it carries."""
    ckpt = read_checkpoint(path, "ckpt")
    hp = ckpt["hyper_parameters"]
    module = ClassifierModule(hp["config"], tuple(hp["input_shape"]), hp["num_classes"])
    try:
        module.load_state_dict(ckpt["state_dict"])
    except RuntimeError as err:
        raise ConfigError("ckpt", f"{path}: weights do not fit the model its config builds: {err}") from None
    return module


def evaluate(cfg: dict[str, Any]) -> float:
    quiet_lightning(bool(cfg.get("quiet")))
    module = load_module(cfg["ckpt"])
    config = module.config
    data_cfg = {**config["data"], **(cfg.get("data") or {})}
    dm = build_datamodule({**config, "data": data_cfg})
    dm.check_available()
    trainer = Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=not cfg.get("quiet"),
                      enable_model_summary=False, use_distributed_sampler=False, **cfg.get("trainer", {}))
    metrics = trainer.test(module, datamodule=dm, verbose=False)[0]
    print(f"checkpoint: {cfg['ckpt']}")
    for key in sorted(metrics):
        print(f"{key}: {float(metrics[key]):.4f}" if key != "test/samples" else f"{key}: {int(metrics[key])}")
    return float(metrics["test/acc"])
