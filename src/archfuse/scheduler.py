"""Learning-rate schedules (the ``scheduler`` config group) that know the length of the fit they run in.

A schedule here takes ``fit_epochs``; the LightningModule fills it in with the number of epochs of the
fit it is used for (the run's ``trainer.max_epochs``, or a recipe step's fine-tune epochs), so one config
serves both. torch's own schedulers plug in by ``_target_`` as they are.
"""

import math

import torch
from torch.optim.lr_scheduler import LambdaLR

from archfuse.errors import ConfigError


def warmup_cosine(optimizer: torch.optim.Optimizer, *, warmup_epochs: int, final_lr_ratio: float,
                  fit_epochs: int) -> LambdaLR:
    """Per epoch: a linear warm-up over ``warmup_epochs`` to the optimizer's learning rate, then a
    cosine decay that reaches ``final_lr_ratio`` of it just after the last epoch."""
    if not isinstance(warmup_epochs, int) or isinstance(warmup_epochs, bool) or warmup_epochs < 0:
        raise ConfigError("scheduler.warmup_epochs", f"must be an integer >= 0, got {warmup_epochs!r}")
    if not isinstance(final_lr_ratio, int | float) or not 0.0 <= final_lr_ratio <= 1.0:
        raise ConfigError("scheduler.final_lr_ratio", f"must be a number in [0, 1], got {final_lr_ratio!r}")
    decay_epochs = max(1, fit_epochs - warmup_epochs)

    def factor(epoch: int) -> float:
        if epoch < warmup_epochs:
            return (epoch + 1) / (warmup_epochs + 1)
        progress = min(1.0, (epoch - warmup_epochs) / decay_epochs)
        return final_lr_ratio + (1.0 - final_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)
