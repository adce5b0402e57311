"""Check a composed config by building everything that is cheap to build, before any data is loaded."""

from dataclasses import dataclass
from typing import Any

from lightning.pytorch import seed_everything

from archfuse.checkpoint import read_checkpoint
from archfuse.data.datamodule import TensorDataModule
from archfuse.errors import ConfigError
from archfuse.instantiate import build
from archfuse.models.build import check_forward
from archfuse.objective import check_objective
from archfuse.module import ClassifierModule
from archfuse.schema import check_schemas


@dataclass
class Parts:
    datamodule: TensorDataModule
    module: ClassifierModule


def build_datamodule(config: dict[str, Any]) -> TensorDataModule:
    dm = build(config["data"], "data")
    if not isinstance(dm, TensorDataModule):
        raise ConfigError("data._target_", f"{config['data']['_target_']} is not an archfuse TensorDataModule")
    return dm


def build_module(config: dict[str, Any], dm: TensorDataModule) -> ClassifierModule:
    seed_everything(int(config.get("seed") or 0), workers=True, verbose=False)
    return ClassifierModule(config, dm.input_shape, dm.num_classes)


def check_optimizer(config: dict[str, Any], module: ClassifierModule) -> None:
    """Build optimizer and scheduler once on the real parameters: bad values fail here, not at epoch 1."""
    key = "optimizer"
    try:
        optimizer = build(config["optimizer"], key)(params=module.parameters())
        if config.get("scheduler"):
            key = "scheduler"
            build(config["scheduler"], key)(optimizer=optimizer)
    except (TypeError, ValueError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(key, f"{config[key]['_target_']} rejected its arguments: {err}") from None


def check_resume(path: str, module: ClassifierModule) -> None:
    ckpt = read_checkpoint(path, "ckpt_path")
    own = module.state_dict()
    for name, tensor in ckpt["state_dict"].items():
        if name in own and own[name].shape != tensor.shape:
            raise ConfigError("ckpt_path", f"{path} holds {name} of shape {tuple(tensor.shape)}, but this config "
                              f"builds {tuple(own[name].shape)}; resume with the config the checkpoint was trained with")
    missing = set(own) - set(ckpt["state_dict"])
    if missing:
        raise ConfigError("ckpt_path", f"{path} lacks {sorted(missing)[0]}: it was trained with another model config")


def validate(config: dict[str, Any]) -> Parts:
    """Every error here names its key; nothing is downloaded, loaded or trained."""
    check_schemas(config)
    check_objective(config)
    dm = build_datamodule(config)
    dm.check_available()
    module = build_module(config, dm)
    check_forward(module.net, dm.input_shape, dm.num_classes)
    check_optimizer(config, module)
    if config.get("ckpt_path"):
        check_resume(config["ckpt_path"], module)
    return Parts(dm, module)
