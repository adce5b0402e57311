"""ensemble=weighted: a weighted average of the members' probabilities. The weights are given
(``weights: [...]``) or fitted after training on the validation predictions: minimum negative
log-likelihood over the probability simplex (``fit: nll``, softmax-parametrised, L-BFGS in torch) or
the best point of a grid on the simplex (``fit: grid``, step ``grid_step``). With ``fallback``, fitted
weights are kept only where they do better than uniform weights (the members' mean) and than one-hot
weights (the best member alone) in a ``fallback_folds``-fold cross-validation over the validation
predictions (each candidate fitted on the other folds, scored on the held-out one); the chosen candidate
is then fitted on all of validation (``archfuse.ensembles.choice``)."""

import itertools
import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archfuse.checks import check_count
from archfuse.ensembles.base import CombinerData
from archfuse.ensembles.choice import Fit, best_member, check_fallback, choose_by_cv, one_thread
from archfuse.ensembles.members import MemberEnsemble, check_weights, weight_tensor
from archfuse.errors import ConfigError

FITS = ("nll", "grid")
MAX_GRID_POINTS = 200_000


def weighted_mean(member_logits: Tensor, weights: Tensor) -> Tensor:
    """sum_k w_k softmax(logits_k), as log-probabilities."""
    return (weights[:, None, None] * member_logits.softmax(-1)).sum(0).clamp_min(1e-12).log()


def nll(member_logits: Tensor, y: Tensor, weights: Tensor) -> Tensor:
    return F.nll_loss(weighted_mean(member_logits, weights), y)


def fit_nll(member_logits: Tensor, y: Tensor, steps: int = 100) -> Tensor:
    """Weights on the simplex minimising the NLL of the weighted mixture: w = softmax(theta), L-BFGS."""
    theta = torch.zeros(len(member_logits), requires_grad=True)
    optimizer = torch.optim.LBFGS([theta], lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")
    member_logits = member_logits.detach()

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = nll(member_logits, y, theta.softmax(0))
        loss.backward()
        return loss

    optimizer.step(closure)
    return theta.detach().softmax(0)


def simplex_grid(k: int, step: float) -> Tensor:
    """Every weight vector with entries in multiples of ``step`` summing to 1 (P x k)."""
    n = round(1 / step)
    points = [[c / n for c in combo] for combo in _compositions(n, k)]
    return torch.tensor(points)


def _compositions(n: int, k: int):
    """The ways to write n as an ordered sum of k non-negative integers (stars and bars)."""
    for bars in itertools.combinations(range(n + k - 1), k - 1):
        edges = (-1, *bars, n + k - 1)
        yield [edges[i + 1] - edges[i] - 1 for i in range(k)]


def fit_grid(member_logits: Tensor, y: Tensor, step: float) -> Tensor:
    grid = simplex_grid(len(member_logits), step)
    probs = member_logits.softmax(-1)
    losses = torch.stack([F.nll_loss((w[:, None, None] * probs).sum(0).clamp_min(1e-12).log(), y) for w in grid])
    return grid[int(losses.argmin())]


def weighted_candidates(fit: Callable[[Tensor, Tensor], Tensor], k: int) -> dict[str, Fit]:
    """The fitted weights and their fallbacks: one-hot on the best member, uniform."""
    def best(member_logits: Tensor, y: Tensor) -> tuple[dict[str, Tensor], dict[str, Any]]:
        member = best_member(member_logits, y)
        return {"weights": F.one_hot(torch.tensor(member), k).float()}, {"member": member}

    def fitted(member_logits: Tensor, y: Tensor) -> tuple[dict[str, Tensor], dict[str, Any]]:
        weights = fit(member_logits, y)
        return {"weights": weights}, {"weights": weights.tolist()}

    return {"best_member": best, "mean": lambda member_logits, y: ({"weights": torch.full((k,), 1 / k)}, {}),
            "fitted": fitted}


class Weighted(MemberEnsemble):
    combine = staticmethod(weighted_mean)

    def __init__(self, *, fit: str, weights: list | None, grid_step: float, fallback: bool, fallback_folds: int,
                 **choice: Any):
        super().__init__(**choice)
        if fit not in FITS:
            raise ConfigError("ensemble.fit", f"unknown fit {fit!r}; choose nll (minimum log-loss on validation) "
                              "or grid (the best point of a grid on the simplex)")
        check_weights(weights)
        if not 0 < grid_step <= 1 or abs(round(1 / grid_step) * grid_step - 1) > 1e-9:
            raise ConfigError("ensemble.grid_step", f"must divide 1 into equal steps (0.1, 0.05, 0.25), got {grid_step}")
        self.how, self.weights, self.grid_step = fit, weights, grid_step
        self.fallback = check_fallback(fallback)
        self.fallback_folds = check_count("ensemble.fallback_folds", fallback_folds, 2)

    def combiner_tensors(self, k: int, num_classes: int) -> dict[str, Tensor]:
        if self.how == "grid" and self.weights is None:
            points = math.comb(round(1 / self.grid_step) + k - 1, k - 1)
            if points > MAX_GRID_POINTS:
                raise ConfigError("ensemble.grid_step", f"a grid of step {self.grid_step} over {k} members has "
                                  f"{points:,} points; use a coarser ensemble.grid_step or ensemble.fit=nll")
        return {"weights": weight_tensor(self.weights, k)}

    def fit_combiner(self, net: nn.Module, data: CombinerData) -> dict[str, Any]:
        if self.weights is not None:
            return {"weights": net.combiner.weights.clone(), "how": "given"}
        logits, y = data.member_logits("val")
        choice: dict[str, Any] = {}
        with one_thread():
            if self.fallback:
                tensors, choice = choose_by_cv(weighted_mean, weighted_candidates(self.fit_weights, len(logits)),
                                               logits, y, self.fallback_folds, "the validation predictions")
                weights = tensors["weights"]
            else:
                weights = self.fit_weights(logits, y)
        uniform = float(nll(logits, y, torch.full_like(weights, 1 / len(weights))))
        net.combiner.weights.copy_(weights)
        return {"weights": weights, "how": self.how, "val_nll": float(nll(logits, y, weights)),
                "val_nll_uniform": uniform, **choice}

    def fit_weights(self, member_logits: Tensor, y: Tensor) -> Tensor:
        return fit_nll(member_logits, y) if self.how == "nll" else fit_grid(member_logits, y, self.grid_step)
