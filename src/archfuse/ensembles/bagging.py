"""ensemble=bagging: each member trained on its own data (serial fusion), then combined by the mean
(``combine: probs|logits``) or a meta-learner fitted on held-out validation predictions (``combine: stack``;
with ``fallback``, kept only where it beats the members' mean and the best member there, as in ensemble=stack).

``sampling: bootstrap`` gives member k a Poisson(1) count for every training image (the online form of a
bootstrap sample: each image appears 0, 1, 2, ... times, about 63% at least once); ``sampling: shards``
deals the training images out to the members, so each sees a disjoint share. Both are pure functions of
(seed, member, image index): the same on every rank, epoch and resume, with no table to store.
"""

import copy
from typing import Any

import torch
from torch import Tensor, nn

from archfuse.ensembles.base import Combiner, CombinerData, EnsembleNet
from archfuse.ensembles.mean import COMBINE, mean_rule
from archfuse.ensembles.members import MemberEnsemble
from archfuse.ensembles.choice import check_fallback
from archfuse.ensembles.stack import check_holdout, fit_on_holdout, linear_stack, mean_stack_tensors, meta_learner
from archfuse.errors import ConfigError

SAMPLINGS = ("bootstrap", "shards")
# P(Poisson(1) <= n) for n = 0..9: counts by inverting the distribution function.
POISSON_CDF = torch.tensor([0.36787944, 0.73575888, 0.91969860, 0.98101184, 0.99634015, 0.99940582,
                            0.99991676, 0.99998975, 0.99999887, 0.99999989])


def uniform_hash(index: Tensor, salt: int) -> Tensor:
    """A deterministic pseudo-random number in [0, 1) per index (a 32-bit integer mixing function)."""
    h = (index.long() * 0x9E3779B1 + salt * 0x85EBCA77 + 0x27D4EB2F) & 0xFFFFFFFF
    h = ((h ^ (h >> 15)) * 0x2C1B3C6D) & 0xFFFFFFFF
    h = ((h ^ (h >> 12)) * 0x297A2D39) & 0xFFFFFFFF
    h = h ^ (h >> 15)
    return h.double() / 2**32


def sample_weights(index: Tensor, member: int, members: int, sampling: str, seed: int) -> Tensor:
    """How often member ``member`` sees each image of ``index`` (bootstrap counts, or 0/1 for shards)."""
    if sampling == "shards":
        share = (uniform_hash(index, seed) * members).long()
        return (share == member).float()
    u = uniform_hash(index, seed * 1009 + member + 1)
    return torch.searchsorted(POISSON_CDF.double().to(u.device), u).float()


class Bagging(MemberEnsemble):
    uses_sample_index = True

    def __init__(self, *, sampling: str, combine: str, seed: int, estimator: Any, holdout: float, fallback: bool,
                 inner_cv: int, c_grid: list[float], **choice: Any):
        super().__init__(**choice)
        if sampling not in SAMPLINGS:
            raise ConfigError("ensemble.sampling", f"unknown sampling {sampling!r}; choose bootstrap or shards")
        if self.checkpoints:
            raise ConfigError(self.loaded_key, "bagging trains each member on its own sample; loaded "
                              "members are not retrained: use ensemble=mean or weighted for them")
        if combine == "stack":  # the meta-learner of ensemble=stack, fitted on held-out validation predictions
            if estimator is None:
                raise ConfigError("ensemble.estimator", "combine: stack needs a meta-learner, e.g. "
                                  "{_target_: sklearn.linear_model.LogisticRegression}")
            self.learner, self.holdout = meta_learner(estimator, inner_cv, c_grid), check_holdout(holdout)
            self.fallback = check_fallback(fallback)
        elif combine not in COMBINE:
            raise ConfigError("ensemble.combine", f"unknown combination {combine!r}; choose probs (average of "
                              "probabilities), logits (average of logits) or stack (a fitted meta-learner)")
        self.sampling, self.space, self.seed = sampling, combine, seed
        self._per_sample: nn.Module | None = None

    def build(self, members: list[nn.Module], num_classes: int) -> nn.Module:
        if self.space == "stack":
            return EnsembleNet(members, Combiner(linear_stack, mean_stack_tensors(len(members), num_classes)))
        return EnsembleNet(members, Combiner(mean_rule(self.space)))

    def training_loss(self, net: nn.Module, batch: tuple[Tensor, ...], criterion: nn.Module) -> tuple[Tensor, Tensor]:
        x, y, index = batch[0], batch[1], batch[2]
        if self._per_sample is None:
            if not hasattr(criterion, "reduction"):
                raise ConfigError("criterion", "bagging weights each sample's loss: the criterion needs a "
                                  "`reduction` (as torch's losses have)")
            self._per_sample = copy.copy(criterion)
            self._per_sample.reduction = "none"
        member_logits = net.member_logits(x)
        k = len(member_logits)
        loss = member_logits.new_zeros(())
        for m, logits in enumerate(member_logits):
            w = sample_weights(index, m, k, self.sampling, self.seed).to(logits)
            loss = loss + (w * self._per_sample(logits, y)).sum() / w.sum().clamp_min(1.0)
        return loss, net.combiner(member_logits.detach())

    def fit_combiner(self, net: nn.Module, data: CombinerData) -> dict[str, Any]:
        index = data.data.sample_indices("train")  # the indices training batches carry
        k = len(net.members)
        seen = [float((sample_weights(index, m, k, self.sampling, self.seed) > 0).float().mean()) for m in range(k)]
        fitted = {"sampling": self.sampling, "share_of_training_images_seen": seen, "training_images": len(index)}
        if self.space == "stack":  # members never train on validation images: no leakage into the stack
            fitted.update(fit_on_holdout(net, data, self.learner, self.holdout, self.seed, self.fallback))
        return fitted
