"""Check a composed config before any data is loaded or anything trained: every key against the
signature of what it builds, the run's own keys, then the built parts (one forward pass, the optimizer
on the real parameters, a checkpoint to start from). Each failure is a ConfigError naming its key."""

from typing import Any

import torch
from lightning.pytorch import Trainer

from archfuse.build import Parts, build_run
from archfuse.checkpoint import RECORD_KEY, read_checkpoint
from archfuse.checks import check_count, check_number, check_positive
from archfuse.errors import ConfigError
from archfuse.instantiate import locate
from archfuse.models import DATA_SHAPE_ARGS
from archfuse.models.build import check_forward
from archfuse.module import MONITORABLE
from archfuse.objective import check_objective
from archfuse.options import check_options
from archfuse.trainer import build_trainer, lightning_silenced

# The run's own nodes: their keys, each a non-negative integer (the values live in conf/train.yaml).
RUN_NODES = {"cv": ("folds",), "cost": ("batch_size", "repeats", "warmup", "max_seconds")}
ARCHFUSE_TRAINER_KEYS = ("num_threads",)


def check_keys(config: dict[str, Any]) -> None:
    """Misspelt keys and wrong types, group by group, before anything is built."""
    data = config["data"]
    if str(data.get("_target_", "")).startswith("archfuse."):  # a user's own data module checks itself
        check_options(data, locate(data, "data"), "data")
    model = config["model"]
    if str(model.get("_target_", "")).startswith("archfuse."):
        check_options(model, locate(model, "model"), "model", given_by_code=DATA_SHAPE_ARGS)
    ensemble = config.get("ensemble") or {}
    if str(ensemble.get("_target_", "")).startswith("archfuse."):
        check_options(ensemble, locate(ensemble, "ensemble"), "ensemble")
    trainer = {k: v for k, v in config["trainer"].items() if k not in ARCHFUSE_TRAINER_KEYS}
    check_options(trainer, Trainer, "trainer", given_by_code=("callbacks", "logger"))
    if config["trainer"].get("num_threads") is not None:
        check_positive("trainer.num_threads", config["trainer"]["num_threads"])
    check_positive("trainer.max_epochs", config["trainer"].get("max_epochs", 1))
    for node, keys in RUN_NODES.items():
        for key, value in (config.get(node) or {}).items():
            if key not in keys:
                raise ConfigError(f"{node}.{key}", f"unknown key; {node} accepts: {', '.join(keys)}")
            if (node, key) != ("cost", "max_seconds"):  # seconds: checked below
                check_count(f"{node}.{key}", value, 0)
    check_positive("seeds", config.get("seeds", 1))
    if config.get("seeds", 1) > 1 and config.get("ckpt_path"):
        raise ConfigError("seeds", "repeats over seeds start from scratch; a fixed ckpt_path cannot be combined "
                          "with seeds > 1: drop ckpt_path, or resume a single run")
    folds = (config.get("cv") or {}).get("folds") or 0
    if folds == 1:
        raise ConfigError("cv.folds", f"must be 0 (no cross-validation) or at least 2, got {folds}")
    if folds and config.get("ckpt_path"):
        raise ConfigError("ckpt_path", "resuming is not supported together with cv.folds; resume a single run")
    for name in ("batch_size", "repeats"):
        check_positive(f"cost.{name}", (config.get("cost") or {}).get(name, 1))
    check_number("cost.max_seconds", (config.get("cost") or {}).get("max_seconds"), 0.0, low_open=True,
                 what="a number of seconds > 0, or null", none_ok=True)
    check_objective(config)
    check_monitors(config)


def check_monitors(config: dict[str, Any]) -> None:
    """A callback's ``monitor`` names a metric the run logs: Lightning would find out only after the
    first epoch."""
    for name, node in (config.get("callbacks") or {}).items():
        monitor = node.get("monitor") if isinstance(node, dict) else None
        if isinstance(monitor, str) and monitor not in MONITORABLE and not monitor.startswith("train/"):
            raise ConfigError(f"callbacks.{name}.monitor", f"the run logs no metric {monitor!r}; monitor one of "
                              f"{', '.join(MONITORABLE)} (or a recipe's train/ metric)")


def check_criterion(config: dict[str, Any], parts: Parts) -> None:
    """The training loss on a batch of two: a value torch takes when the loss is built but refuses when it
    is computed (``label_smoothing=2``) fails now, not at the first training step."""
    logits = torch.zeros(2, parts.datamodule.num_classes)
    try:
        parts.module.criterion(logits, torch.zeros(2, dtype=torch.long))
    except (RuntimeError, TypeError, ValueError) as err:
        raise ConfigError("criterion", f"{config['criterion']['_target_']} failed on a batch of logits and "
                          f"labels: {err}") from None


def check_folds(config: dict[str, Any], parts: Parts) -> None:
    """Stratified folds need at least as many images of every class as folds (this loads the labels)."""
    folds = (config.get("cv") or {}).get("folds") or 0
    if not folds:
        return
    smallest = int(parts.datamodule.pool_labels().bincount().min())
    if folds > smallest:
        raise ConfigError("cv.folds", f"{folds} folds need at least {folds} images of every class, but the "
                          f"smallest class of the training pool has {smallest}; use cv.folds<={smallest}")


def check_optimizer(config: dict[str, Any], parts: Parts) -> None:
    """Optimizer and scheduler built on the real parameters, and kept for the fit: bad values fail here,
    not at epoch 1."""
    module, key = parts.module, "optimizer"
    if not any(p.requires_grad for p in module.parameters()):
        return  # nothing to train: the run only validates, fits its combiner and tests
    try:
        optimizer = module.make_optimizer()
        key = "scheduler"
        module.keep_optimizers(optimizer, module.make_scheduler(optimizer))
    except ConfigError:
        raise
    except (TypeError, ValueError) as err:
        raise ConfigError(key, f"{config[key]['_target_']} rejected its arguments: {err}") from None


def check_resume(path: str, parts: Parts, ckpt: dict[str, Any]) -> None:
    own = parts.module.state_dict()
    for name, tensor in ckpt["state_dict"].items():
        if name in own and own[name].shape != tensor.shape:
            raise ConfigError("ckpt_path", f"{path} holds {name} of shape {tuple(tensor.shape)}, but this config "
                              f"builds {tuple(own[name].shape)}; resume with the config the checkpoint was trained with")
    missing = set(own) - set(ckpt["state_dict"])
    if missing:
        raise ConfigError("ckpt_path", f"{path} lacks {sorted(missing)[0]}: it was trained with another model config")


def check_gpus(trainer: dict[str, Any], visible: int) -> None:
    """GPUs asked for are GPUs there are: Lightning would say only "No supported gpu backend found!", or
    fail once the processes have started."""
    if str(trainer.get("accelerator")) not in ("gpu", "cuda"):
        return
    if visible == 0:
        raise ConfigError("trainer.accelerator", f"{trainer['accelerator']} asked for, but no CUDA GPU is visible "
                          "(torch.cuda.is_available() is False): train on the CPU with trainer=default, or check "
                          "the NVIDIA driver, the CUDA build of torch and CUDA_VISIBLE_DEVICES")
    devices = trainer.get("devices")
    wanted = (len(devices) if isinstance(devices, list | tuple)
              else devices if isinstance(devices, int) and not isinstance(devices, bool) and devices > 0 else None)
    highest = max(devices) if isinstance(devices, list | tuple) and devices else None
    if (wanted is not None and wanted > visible) or (highest is not None and highest >= visible):
        raise ConfigError("trainer.devices", f"{devices} asks for more GPUs than the {visible} visible; set "
                          f"trainer.devices={visible} (or fewer), or trainer.devices=-1 for all of them")


def check_trainer(config: dict[str, Any]) -> None:
    """The Trainer with its logger and callbacks, built once and dropped: a value Lightning or a callback
    refuses (precision, strategy, a checkpoint option) fails now, not after the data has loaded. Nothing is
    written: the logger and checkpoints create their files only when they first write."""
    check_gpus(config["trainer"], torch.cuda.device_count())
    with lightning_silenced():
        trainer = build_trainer(config, config["paths"]["run_dir"], quiet=True)
    for logger in trainer.loggers:  # where a logger will write (name, version), worked out without writing
        try:
            getattr(logger, "log_dir", None)
        except (TypeError, ValueError) as err:
            raise ConfigError("logger", f"{config['logger']['_target_']} cannot name its folder: {err}") from None


def validate(config: dict[str, Any]) -> Parts:
    """Check the config and build the run's parts; nothing is downloaded, loaded or trained."""
    check_keys(config)
    check_trainer(config)
    ckpt = read_checkpoint(config["ckpt_path"], "ckpt_path") if config.get("ckpt_path") else None
    parts = build_run(config, record=(ckpt or {}).get(RECORD_KEY))
    parts.datamodule.check_available()
    check_folds(config, parts)
    check_forward(parts.module.net, parts.datamodule.input_shape, parts.datamodule.num_classes)
    check_criterion(config, parts)
    parts.module.recipe.check(parts.module.net, parts.datamodule)
    parts.module.ensemble.check(parts.module.net, parts.datamodule)
    check_optimizer(config, parts)
    if ckpt is not None:
        check_resume(config["ckpt_path"], parts, ckpt)
        parts.resume = ckpt
    return parts
