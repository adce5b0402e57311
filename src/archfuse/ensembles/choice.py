"""Choosing a combiner on held-out predictions: the fitted one, or a simpler fallback.

A fitted combiner (a stacker's meta-learner, weights on the simplex) can lose to what it combines when
its fit follows the noise of the few validation predictions it sees. So a strategy offers candidates,
each a way to compute its combiner's tensors from member logits and targets:

- ``best_member``: the member most accurate on the predictions the candidate is fitted on, alone;
- ``mean``: the members' plain mean (nothing fitted);
- ``fitted``: the strategy's own fit.

Each is scored on predictions its own fit did not see: the held-out rest of a split
(:func:`choose_on_holdout`), or each sample's held-out fold of a K-fold cross-validation
(:func:`choose_by_cv`). The highest held-out accuracy wins; on equal accuracy the lower log-loss; on
equal both, the simpler (best_member, then mean, then fitted), so a fitted combiner must earn its place.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from archfuse.checks import must_be
from archfuse.ensembles.members import accuracy_of

SIMPLER_FIRST = ("best_member", "mean", "fitted")
NLL_TIE = 1e-6  # log-losses this close are equal (the same combiner computed two ways)

Rule = Callable[..., Tensor]  # (K x N x C member logits, **tensors) -> N x C logits
# (K x N x C member logits, N targets) -> (the combiner's tensors, what the fit found, for the report)
Fit = Callable[[Tensor, Tensor], tuple[dict[str, Tensor], dict[str, Any]]]


@contextmanager
def one_thread() -> Iterator[None]:
    """Torch and BLAS on one thread while combiners are fitted: on a few hundred predictions more threads
    only wait on each other (tens of times slower on a shared CPU). The run's settings come back after."""
    from threadpoolctl import threadpool_limits

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(1):
            yield
    finally:
        torch.set_num_threads(threads)


def check_fallback(fallback: Any) -> bool:
    if not isinstance(fallback, bool):
        raise must_be("ensemble.fallback", "true or false", fallback)
    return fallback


def scores(logits: Tensor, y: Tensor) -> dict[str, float]:
    """Accuracy and log-loss of combined logits (log-probabilities are logits too)."""
    return {"val_acc": accuracy_of(logits, y), "val_nll": float(F.cross_entropy(logits.float(), y))}


def best_member(member_logits: Tensor, y: Tensor) -> int:
    """The most accurate member; on equal accuracy the lower log-loss, then the first."""
    keyed = [(-accuracy_of(m, y), float(F.cross_entropy(m.float(), y)), i) for i, m in enumerate(member_logits)]
    return min(keyed)[2]


def folds_of(y: Tensor, folds: int) -> list[tuple[Tensor, Tensor]]:
    """(fit indices, held-out indices) of each fold, in the split's order (drawn by the split's seed);
    stratified when every class has ``folds`` samples. Never more folds than samples."""
    from sklearn.model_selection import KFold, StratifiedKFold

    folds = min(folds, len(y))
    counts = torch.bincount(y)
    splitter = StratifiedKFold(folds) if counts[counts > 0].min() >= folds else KFold(folds)
    return [(torch.as_tensor(a), torch.as_tensor(b)) for a, b in splitter.split(y.numpy(), y.numpy())]


def cross_validated(rule: Rule, fit: Fit, member_logits: Tensor, y: Tensor,
                    folds: list[tuple[Tensor, Tensor]]) -> Tensor:
    """N x C: each sample's combined logits from the combiner fitted on the other folds."""
    out = torch.empty(member_logits.shape[1:])
    for fit_idx, held_idx in folds:
        tensors, _ = fit(member_logits[:, fit_idx], y[fit_idx])
        out[held_idx] = rule(member_logits[:, held_idx], **tensors).float()
    return out


def pick(scored: dict[str, dict[str, float]]) -> tuple[str, str]:
    """(the chosen candidate, why): the highest accuracy, then the lowest log-loss, then the simplest."""
    def line(names: list[str], key: str) -> str:
        return ", ".join(f"{n} {scored[n][key]:.4f}" for n in names)

    names = sorted(scored, key=SIMPLER_FIRST.index)
    top = max(scored[n]["val_acc"] for n in names)
    level = [n for n in names if scored[n]["val_acc"] == top]
    if len(level) == 1:
        return level[0], f"the highest held-out accuracy ({line(names, 'val_acc')})"
    low = min(scored[n]["val_nll"] for n in level)
    best = [n for n in level if scored[n]["val_nll"] <= low + NLL_TIE]
    tie = f"{', '.join(level)} tie on held-out accuracy ({top:.4f})"
    if len(best) == 1:
        return best[0], f"{tie}; {best[0]} has the lowest log-loss ({line(level, 'val_nll')})"
    return best[0], f"{tie} and log-loss ({low:.4f}); the simplest is kept"


def report(chosen: str, scored: dict[str, dict[str, float]], found: dict[str, dict[str, Any]], scored_on: str,
           why: str) -> dict[str, Any]:
    """The choice as summary.json's ensemble "fitted" shows it."""
    return {"chosen": chosen, "candidates": {n: {**found[n], **scored[n]} for n in scored},
            "scored_on": scored_on, "why": why}


def choose_on_holdout(rule: Rule, candidates: dict[str, Fit], member_logits: Tensor, y: Tensor,
                      fit_idx: Tensor, rest_idx: Tensor) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Every candidate fitted on ``fit_idx`` and scored on ``rest_idx``: (the chosen one's tensors, as fitted
    there, and the choice's report)."""
    fitted = {name: fit(member_logits[:, fit_idx], y[fit_idx]) for name, fit in candidates.items()}
    rest = member_logits[:, rest_idx]
    scored = {name: scores(rule(rest, **tensors), y[rest_idx]) for name, (tensors, _) in fitted.items()}
    chosen, why = pick(scored)
    found = {name: info for name, (_, info) in fitted.items()}
    return fitted[chosen][0], report(chosen, scored, found, f"held-out validation ({len(rest_idx)} images)", why)


def choose_by_cv(rule: Rule, candidates: dict[str, Fit], member_logits: Tensor, y: Tensor, folds: int,
                 what: str) -> tuple[dict[str, Tensor], dict[str, Any]]:
    """Every candidate scored by ``folds``-fold cross-validation over the predictions (fitted on the other
    folds, scored on each held-out fold), then refitted on all of them: (the chosen one's tensors, the
    choice's report). ``what`` names the predictions, e.g. "the validation predictions"."""
    split = folds_of(y, folds)
    scored = {name: scores(cross_validated(rule, fit, member_logits, y, split), y) for name, fit in candidates.items()}
    chosen, why = pick(scored)
    refitted = {name: fit(member_logits, y) for name, fit in candidates.items()}
    found = {name: info for name, (_, info) in refitted.items()}
    scored_on = f"{len(split)}-fold cross-validation over {what} ({len(y)} images)"
    return refitted[chosen][0], report(chosen, scored, found, scored_on, why)
