"""Typed schemas (dataclasses) of the config groups: a wrong type or a misspelt key fails here,
naming the key, before anything is built. Semantic checks live in the classes that are built."""

from dataclasses import dataclass
from typing import Any, Optional

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from archfuse.errors import ConfigError
from archfuse.models import SCHEMAS as MODEL_SCHEMAS


@dataclass
class DataSchema:
    _target_: str = "???"
    batch_size: int = 64
    num_workers: int = 0
    val_fraction: float = 0.1
    test_fraction: float = 0.2  # digits only
    image_size: int = 28  # digits only
    train_subset: Optional[int] = None
    seed: int = 0
    root: str = "~/data"  # torchvision sets
    download: bool = False
    verify_checksums: bool = True


@dataclass
class TrainerSchema:
    _target_: str = "lightning.pytorch.Trainer"
    accelerator: str = "auto"
    devices: Any = 1
    num_nodes: int = 1
    strategy: Optional[str] = None
    sync_batchnorm: bool = False
    max_epochs: int = 10
    min_epochs: Optional[int] = None
    max_steps: int = -1
    max_time: Optional[str] = None
    precision: Any = "32-true"
    deterministic: Any = False
    benchmark: Optional[bool] = None
    log_every_n_steps: int = 10
    check_val_every_n_epoch: Optional[int] = 1
    val_check_interval: Optional[Any] = None
    num_sanity_val_steps: Optional[int] = None
    accumulate_grad_batches: int = 1
    gradient_clip_val: Optional[float] = None
    limit_train_batches: Optional[Any] = None
    limit_val_batches: Optional[Any] = None
    limit_test_batches: Optional[Any] = None
    overfit_batches: Any = 0.0
    fast_dev_run: Any = False
    enable_progress_bar: bool = True
    enable_model_summary: Optional[bool] = None
    profiler: Optional[str] = None
    num_threads: Optional[int] = None


@dataclass
class CVSchema:
    folds: int = 0


@dataclass
class CostSchema:
    batch_size: int = 1
    repeats: int = 30
    warmup: int = 5


def _check(node: dict[str, Any], schema: type, key: str) -> None:
    try:
        OmegaConf.merge(OmegaConf.structured(schema), node)
    except OmegaConfBaseException as err:
        sub = getattr(err, "full_key", "") or ""
        reason = str(err).splitlines()[0]
        if "not in" in reason or "not found" in reason:
            allowed = ", ".join(k for k in schema.__dataclass_fields__ if k != "_target_")
            reason = f"unknown key; {key} accepts: {allowed}"
        raise ConfigError(f"{key}.{sub}" if sub else key, reason) from None


def check_schemas(config: dict[str, Any]) -> None:
    """Type-check every group that has a schema. A user's own model or data set is checked when built."""
    if str(config["data"].get("_target_", "")).startswith("archfuse."):
        _check(config["data"], DataSchema, "data")
    model_schema = MODEL_SCHEMAS.get(config["model"].get("_target_"))
    if model_schema is not None:
        _check(config["model"], model_schema, "model")
    _check(config["trainer"], TrainerSchema, "trainer")
    _check(config.get("cv") or {}, CVSchema, "cv")
    _check(config.get("cost") or {}, CostSchema, "cost")
    folds = (config.get("cv") or {}).get("folds") or 0
    if folds < 0 or folds == 1:
        raise ConfigError("cv.folds", f"must be 0 (no cross-validation) or at least 2, got {folds}")
    if folds and config.get("ckpt_path"):
        raise ConfigError("ckpt_path", "resuming is not supported together with cv.folds; resume a single run")
    cost = config.get("cost") or {}
    for name in ("batch_size", "repeats"):
        if cost.get(name, 1) <= 0:
            raise ConfigError(f"cost.{name}", f"must be a positive integer, got {cost.get(name)}")
    if config["trainer"].get("max_epochs", 1) <= 0:
        raise ConfigError("trainer.max_epochs", f"must be a positive integer, got {config['trainer']['max_epochs']}")
