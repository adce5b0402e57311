"""Randomness drawn from (seed, epoch, rank): a resumed run replays an uninterrupted one."""

from typing import Any


def fit_epoch(trainer: Any) -> int:
    """The index of the training epoch under way. Unlike ``trainer.current_epoch``, this is already
    right when a resumed run builds its first iterator (the checkpoint was written before the
    epoch counted as completed), so shuffles and dropout seeds replay an uninterrupted run."""
    return trainer.fit_loop.epoch_progress.current.processed


def epoch_seed(seed: int, epoch: int, rank: int = 0) -> int:
    """One seed per (run seed, epoch, rank); the primes keep neighbouring runs' streams apart."""
    return int(seed) + 7919 * int(epoch) + 104729 * int(rank)
