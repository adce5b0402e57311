"""Learning-rate schedules (the ``scheduler`` config group) that know the length of the fit they run in.

A schedule here takes ``fit_epochs``; the LightningModule fills it in with the number of epochs of the
fit it is used for (the run's ``trainer.max_epochs``, or a recipe step's fine-tune epochs), so one config
serves both. torch's own schedulers plug in by ``_target_`` as they are.
"""

import math

import torch
from torch.optim.lr_scheduler import LambdaLR

from archfuse.checks import check_count, check_number


def warmup_cosine(optimizer: torch.optim.Optimizer, *, warmup_epochs: int, final_lr_ratio: float,
                  fit_epochs: int) -> LambdaLR:
    """Per epoch: a linear warm-up over ``warmup_epochs`` to the optimizer's learning rate, then a
    cosine decay that reaches ``final_lr_ratio`` of it just after the last epoch."""
    check_count("scheduler.warmup_epochs", warmup_epochs, 0)
    check_number("scheduler.final_lr_ratio", final_lr_ratio, 0.0, 1.0)
    decay_epochs = max(1, fit_epochs - warmup_epochs)

    def factor(epoch: int) -> float:
        if epoch < warmup_epochs:
            return (epoch + 1) / (warmup_epochs + 1)
        progress = min(1.0, (epoch - warmup_epochs) / decay_epochs)
        return final_lr_ratio + (1.0 - final_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)
