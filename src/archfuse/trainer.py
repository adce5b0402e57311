"""Build the Lightning Trainer, its logger and callbacks from the config."""

import copy
import logging
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch import Trainer

from archfuse.callbacks import ResumeCheckpoint
from archfuse.checkpoint import LocalCheckpointIO
from archfuse.ddp import ArchfuseDDPStrategy
from archfuse.errors import ConfigError
from archfuse.instantiate import build, locate
from archfuse.options import accepted_parameters


LIGHTNING_LOGGERS = ("lightning.pytorch", "lightning.fabric", "lightning")


def _no_product_tip(record: logging.LogRecord) -> bool:
    """Lightning 2.6 advertises its cloud services at every Trainer start ("💡 Tip: ..."): not about the run."""
    return "Tip:" not in str(record.msg)


def quiet_lightning(quiet: bool) -> None:
    """Quiet mode keeps Lightning's start-up chatter (device tables) off the console; its product tips
    never reach it."""
    # Raised inside Lightning at every step on recent torch releases; nothing a user can act on.
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\)` is deprecated.*")
    level = logging.WARNING if quiet else logging.INFO
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        log = logging.getLogger(name)
        if _no_product_tip not in log.filters:
            log.addFilter(_no_product_tip)
    for name in LIGHTNING_LOGGERS:
        log = logging.getLogger(name)
        log.setLevel(level)
        if logging.getLogger().handlers:  # Hydra's console + train.log handlers: print each line once
            log.handlers.clear()
            log.propagate = True


@contextmanager
def lightning_silenced() -> Iterator[None]:
    """Lightning's start-up lines (devices) off for a Trainer built only to check the config: a bad
    config then prints its one error line and nothing that looks like a run starting."""
    loggers = [logging.getLogger(name) for name in LIGHTNING_LOGGERS]
    levels = [log.level for log in loggers]
    for log in loggers:
        log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for log, level in zip(loggers, levels):
            log.setLevel(level)


def native_bf16(accelerator: str | None) -> bool:
    """Whether the device the run trains on computes bf16 natively: a CUDA GPU that supports it, or a
    CPU with AVX512-BF16 or AMX. Elsewhere bf16 is emulated and slower than fp32."""
    if accelerator in (None, "auto", "gpu", "cuda") and torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    if accelerator not in (None, "auto", "cpu"):
        return False
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except AttributeError:  # a torch without these probes: assume no native bf16
        return False


def resolve_precision(precision: Any, accelerator: str | None) -> Any:
    """``precision: auto`` is bf16 mixed precision where the device computes bf16 natively, else fp32;
    any other value goes to Lightning as it is."""
    if precision != "auto":
        return precision
    return "bf16-mixed" if native_bf16(accelerator) else "32-true"


def build_trainer(config: dict[str, Any], log_dir: str | Path, quiet: bool = False, callbacks: Sequence[Any] = (),
                  resumable: bool = True, **trainer_overrides: Any) -> Trainer:
    """A Trainer that logs to and checkpoints into ``log_dir`` (the run directory, a fold's, a step's).

    ``callbacks`` are live objects given by code (a sweep's pruning callback, a recipe's), added to those
    of the config; ``trainer_overrides`` replace trainer keys (a fine-tune's max_epochs). A fit that is
    not ``resumable`` (a recipe step's fine-tune) writes no resume checkpoint.
    """
    tcfg = {**copy.deepcopy(config["trainer"]), **trainer_overrides}
    tcfg["precision"] = resolve_precision(tcfg.get("precision"), tcfg.get("accelerator"))
    num_threads = tcfg.pop("num_threads", None)
    if num_threads:
        torch.set_num_threads(num_threads)
    extra: dict[str, Any] = {}
    strategy = tcfg.pop("strategy", None)
    if strategy == "ddp":
        backend = "gloo" if tcfg.get("accelerator") == "cpu" else None
        extra["strategy"] = ArchfuseDDPStrategy(process_group_backend=backend)
    elif strategy is not None:
        extra["strategy"] = strategy
    built = []
    for name, node in (config.get("callbacks") or {}).items():
        if node:
            # Checkpoints always go into the run's (or fold's, or step's) own checkpoints/ folder.
            where = {"dirpath": str(Path(log_dir) / "checkpoints")} if _writes_files(node) else {}
            callback = build(node, f"callbacks.{name}", **where)
            if resumable or not isinstance(callback, ResumeCheckpoint):
                built.append(callback)
    logger: Any = False
    if config.get("logger"):
        logger = build(config["logger"], "logger", save_dir=str(log_dir))
    # The data modules shard every split over the ranks themselves (evaluation unpadded, so each
    # sample is seen exactly once); Lightning's DistributedSampler must not re-wrap them.
    tcfg["use_distributed_sampler"] = False
    if quiet:
        tcfg.update(enable_progress_bar=False, enable_model_summary=False)
    try:
        return build(tcfg, "trainer", callbacks=[*built, *callbacks], logger=logger,
                     plugins=[LocalCheckpointIO()], **extra)
    except ConfigError:
        raise
    except Exception as err:  # Lightning's MisconfigurationException and friends
        raise ConfigError("trainer", str(err).splitlines()[0]) from None


def _writes_files(node: dict[str, Any]) -> bool:
    """A callback that takes a ``dirpath`` (checkpoints) writes into the run's checkpoints/ folder."""
    cls = locate(node, "callbacks")
    return isinstance(cls, type) and "dirpath" in accepted_parameters(cls)[0]  # through **kwargs to the base
