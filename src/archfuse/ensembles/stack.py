"""ensemble=stack: a scikit-learn meta-learner on the members' log-probabilities.

The meta-learner is fitted on a held-out share (``holdout``) of the validation predictions only, never
on a prediction of an image a member trained on: the members never see validation images, and the
remaining part of validation measures the stack honestly. With ``fallback`` the stack is the best of
three candidates on that remaining part: the fitted meta-learner, the mean of the members'
log-probabilities, or the best member alone (``archfuse.ensembles.choice``); all three are linear
stacks, so the checkpoint holds whichever was chosen. The meta-learner's C is chosen by ``inner_cv``-fold
cross-validation over ``c_grid`` on the share it is fitted on. Any linear classifier (``estimator._target_``,
LogisticRegression by default) works: its coefficients and intercepts are stored as the combiner's
tensors, so the checkpoint holds the whole stack and loads with weights_only. A non-linear estimator
has no such tensors and is refused before training.
"""

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from archfuse.checks import check_number, is_int, is_number, must_be
from archfuse.ensembles.base import CombinerData
from archfuse.ensembles.choice import (Fit, best_member, check_fallback, choose_by_cv, choose_on_holdout,
                                      cross_validated, folds_of, one_thread, scores)
from archfuse.ensembles.members import MemberEnsemble, accuracy_of
from archfuse.errors import ConfigError
from archfuse.instantiate import build

from sklearn.base import clone


def member_features(member_logits: Tensor) -> Tensor:
    """K x N x C logits -> N x (K*C) features: each member's log-probabilities side by side."""
    k, n, c = member_logits.shape
    return member_logits.log_softmax(-1).permute(1, 0, 2).reshape(n, k * c)


def linear_stack(member_logits: Tensor, coef: Tensor, intercept: Tensor) -> Tensor:
    """The fitted linear meta-learner's decision values (logits of the C classes)."""
    return member_features(member_logits) @ coef.T + intercept


def holdout_split(y: Tensor, share: float, seed: int) -> tuple[Tensor, Tensor]:
    """(indices the meta-learner is fitted on, indices it is measured on), stratified when possible."""
    from sklearn.model_selection import train_test_split

    idx = torch.arange(len(y)).numpy()
    counts = torch.bincount(y)
    stratify = y.numpy() if counts[counts > 0].min() >= 2 else None
    fit, rest = train_test_split(idx, train_size=share, random_state=seed, stratify=stratify)
    return torch.as_tensor(fit), torch.as_tensor(rest)


def linear_tensors(estimator: Any, num_classes: int, features: int) -> tuple[Tensor, Tensor]:
    """(C x F coefficients, C intercepts) of a fitted linear classifier, for every class of the data
    (a class absent from the fitting samples gets a very low intercept)."""
    coef = torch.zeros(num_classes, features)
    intercept = torch.full((num_classes,), -30.0)
    classes = [int(c) for c in estimator.classes_]
    w = torch.as_tensor(estimator.coef_, dtype=torch.float32)
    b = torch.as_tensor(estimator.intercept_, dtype=torch.float32).reshape(-1)
    if len(classes) == 2 and w.shape[0] == 1:  # binary: one decision value d, logits (0, d)
        coef[classes[1]], intercept[classes[1]], intercept[classes[0]] = w[0], b[0], 0.0
    else:
        for row, cls in enumerate(classes):
            coef[cls], intercept[cls] = w[row], b[row]
    return coef, intercept


def linear_estimator(estimator: Any) -> Any:
    """The meta-learner, built (Hydra may pass it built or as a config); refused unless it is linear."""
    from sklearn.linear_model._base import LinearClassifierMixin

    made = build(estimator, "ensemble.estimator") if isinstance(estimator, dict) else estimator
    if not isinstance(made, LinearClassifierMixin):
        raise ConfigError("ensemble.estimator", f"{type(made).__name__} is not a linear classifier: its "
                          "fitted state cannot be saved as tensors, so the checkpoint could not hold it (not "
                          "supported for saving); use LogisticRegression, RidgeClassifier, SGDClassifier, ...")
    return made


def check_holdout(holdout: Any) -> float:
    return float(check_number("ensemble.holdout", holdout, 0.0, 1.0, low_open=True, high_open=True,
                              what="a share of the validation split between 0 and 1 (exclusive)"))


def mean_stack_tensors(k: int, num_classes: int) -> dict[str, Tensor]:
    """The stack before fitting: the mean of the members' log-probabilities."""
    coef = torch.zeros(num_classes, k * num_classes)
    for m in range(k):
        coef[:, m * num_classes:(m + 1) * num_classes] += torch.eye(num_classes) / k
    return {"coef": coef, "intercept": torch.zeros(num_classes)}


def member_stack_tensors(member: int, k: int, num_classes: int) -> dict[str, Tensor]:
    """A stack that answers with one member's log-probabilities."""
    coef = torch.zeros(num_classes, k * num_classes)
    coef[:, member * num_classes:(member + 1) * num_classes] = torch.eye(num_classes)
    return {"coef": coef, "intercept": torch.zeros(num_classes)}


@dataclass(frozen=True)
class MetaLearner:
    """The linear meta-learner; its C chosen by ``inner_cv``-fold cross-validation over ``c_grid`` (the
    lowest held-out log-loss, the smaller C on a tie) on the predictions it is fitted on. ``inner_cv: 0``,
    or an estimator without C, fits the estimator as given."""

    estimator: Any
    inner_cv: int
    c_grid: tuple[float, ...]

    def fit(self, member_logits: Tensor, y: Tensor) -> tuple[dict[str, Tensor], dict[str, Any]]:
        learner, found = clone(self.estimator), {}
        counts = torch.bincount(y)
        if self.inner_cv and counts[counts > 0].min() < self.inner_cv:  # a fold could lack a class entirely
            found = {"inner_cv": f"not run: a class has fewer than {self.inner_cv} of the {len(y)} samples"}
        elif self.inner_cv and "C" in learner.get_params():
            split = folds_of(y, self.inner_cv)
            nll = [scores(cross_validated(linear_stack, self.with_c(c), member_logits, y, split), y)["val_nll"]
                   for c in self.c_grid]
            chosen = self.c_grid[nll.index(min(nll))]
            learner.set_params(C=chosen)
            found = {"C": chosen, "inner_cv": {"folds": len(split), "C": list(self.c_grid), "val_nll": nll}}
        elif self.inner_cv:
            found = {"inner_cv": f"not run: {type(learner).__name__} has no parameter C"}
        return fitted_stack(learner, member_logits, y), found

    def with_c(self, c: float) -> Fit:
        return lambda member_logits, y: (fitted_stack(clone(self.estimator).set_params(C=c), member_logits, y), {})


def fitted_stack(learner: Any, member_logits: Tensor, y: Tensor) -> dict[str, Tensor]:
    """``learner`` fitted on the members' log-probabilities, as the stack's tensors."""
    features = member_features(member_logits)
    learner.fit(features.numpy(), y.numpy())
    coef, intercept = linear_tensors(learner, member_logits.shape[-1], features.shape[1])
    return {"coef": coef, "intercept": intercept}


def meta_learner(estimator: Any, inner_cv: Any, c_grid: Any) -> MetaLearner:
    """The checked meta-learner options (shared by ensemble=stack and bagging with combine: stack)."""
    if not is_int(inner_cv, 0) or inner_cv == 1:
        raise must_be("ensemble.inner_cv", "0 (the estimator's C as given) or at least 2 folds", inner_cv)
    if not isinstance(c_grid, list | tuple) or not c_grid or not all(is_number(c, 0.0, low_open=True) for c in c_grid):
        raise must_be("ensemble.c_grid", "a non-empty list of positive numbers (values of the estimator's C)", c_grid)
    return MetaLearner(linear_estimator(estimator), inner_cv, tuple(sorted(float(c) for c in c_grid)))


def stack_candidates(learner: MetaLearner, k: int, num_classes: int) -> dict[str, Fit]:
    """The fitted meta-learner and its fallbacks, all as linear stacks."""
    def best(member_logits: Tensor, y: Tensor) -> tuple[dict[str, Tensor], dict[str, Any]]:
        member = best_member(member_logits, y)
        return member_stack_tensors(member, k, num_classes), {"member": member}

    return {"best_member": best, "mean": lambda member_logits, y: (mean_stack_tensors(k, num_classes), {}),
            "fitted": learner.fit}


def the_choice(choice: dict[str, Any], fallback: bool) -> dict[str, Any]:
    """What the report shows of a choice: the fitted meta-learner's C and inner cross-validation, and with
    ``fallback`` what was chosen among which candidates, scored on what, and why."""
    found = choice["candidates"]["fitted"]
    tuned = {"C": found["C"]} if "C" in found else {}
    if "inner_cv" in found:
        tuned["inner_cv"] = found.pop("inner_cv")  # once, beside C, not under every candidate
    return {**choice, **tuned} if fallback else tuned


def set_stack(net: nn.Module, tensors: dict[str, Tensor]) -> None:
    net.combiner.coef.copy_(tensors["coef"])
    net.combiner.intercept.copy_(tensors["intercept"])


def fit_on_holdout(net: nn.Module, data: CombinerData, learner: MetaLearner, holdout: float, seed: int,
                   fallback: bool) -> dict[str, Any]:
    """Fit the meta-learner on a held-out share of the validation predictions (images no member trained
    on) into the combiner's tensors; the rest of validation measures it, and with ``fallback`` chooses
    between it, the members' mean and the best member."""
    logits, y = data.member_logits("val")
    fit_idx, rest_idx = holdout_split(y, holdout, seed)
    k, num_classes = logits.shape[0], logits.shape[-1]
    candidates = stack_candidates(learner, k, num_classes) if fallback else {"fitted": learner.fit}
    with one_thread():
        tensors, choice = choose_on_holdout(linear_stack, candidates, logits, y, fit_idx, rest_idx)
    set_stack(net, tensors)
    rest = logits[:, rest_idx]
    return {"estimator": repr(learner.estimator), "fit_samples": len(fit_idx),
            "holdout_samples": len(rest_idx), "holdout_val_acc": accuracy_of(net.combiner(rest), y[rest_idx]),
            "holdout_member_val_acc": [accuracy_of(m, y[rest_idx]) for m in rest], **the_choice(choice, fallback)}


class Stack(MemberEnsemble):
    combine = staticmethod(linear_stack)

    def __init__(self, *, estimator: Any, holdout: float, oof_folds: int, seed: int, fallback: bool, inner_cv: int,
                 c_grid: list[float], **choice: Any):
        super().__init__(**choice)
        if not is_int(oof_folds, 0) or oof_folds == 1:
            raise must_be("ensemble.oof_folds", "0 (fit on a held-out share of validation) or at least 2 folds",
                          oof_folds)
        if oof_folds and self.checkpoints:
            raise ConfigError("ensemble.oof_folds", "members loaded from checkpoints are not retrained, so they "
                              "have no out-of-fold predictions; use ensemble.holdout with ensemble.checkpoints")
        self.oof_folds = oof_folds
        self.holdout = check_holdout(holdout)
        self.learner, self.seed = meta_learner(estimator, inner_cv, c_grid), seed
        self.estimator, self.fallback = self.learner.estimator, check_fallback(fallback)

    def combiner_tensors(self, k: int, num_classes: int) -> dict[str, Tensor]:
        return mean_stack_tensors(k, num_classes)

    def fit_combiner(self, net: nn.Module, data: CombinerData) -> dict[str, Any]:
        if self.oof_folds:
            return self.fit_out_of_fold(net, data)
        return fit_on_holdout(net, data, self.learner, self.holdout, self.seed, self.fallback)

    def fit_out_of_fold(self, net: nn.Module, data: CombinerData) -> dict[str, Any]:
        """Members trained afresh K times, each time on K-1 folds of the train+val pool, predict the fold
        they did not see; the meta-learner is fitted on these predictions, which cover the pool once.
        With ``fallback``, the candidates are compared by K-fold cross-validation over these predictions
        (the meta-learner fitted on K-1 folds of them, scored on the last). The run's own members (trained
        on the train split) then use the chosen stack; validation measures it."""
        logits, y = out_of_fold_logits(data, self.oof_folds)
        with one_thread():
            tensors, choice = self.choose_out_of_fold(logits, y)
        set_stack(net, tensors)
        val, y_val = data.member_logits("val")
        return {"estimator": repr(self.estimator), "oof_folds": self.oof_folds, "fit_samples": len(y),
                "oof_member_acc": [accuracy_of(m, y) for m in logits], "val_acc": accuracy_of(net.combiner(val), y_val),
                **the_choice(choice, self.fallback)}

    def choose_out_of_fold(self, logits: Tensor, y: Tensor) -> tuple[dict[str, Tensor], dict[str, Any]]:
        if self.fallback:
            candidates = stack_candidates(self.learner, logits.shape[0], logits.shape[-1])
            return choose_by_cv(linear_stack, candidates, logits, y, self.oof_folds, "the out-of-fold predictions")
        tensors, found = self.learner.fit(logits, y)
        return tensors, {"candidates": {"fitted": found}}


def out_of_fold_logits(data: CombinerData, folds: int) -> tuple[Tensor, Tensor]:
    """(K x N x C, N): every image of the train+val pool predicted by members that never trained on it."""
    outputs, targets = zip(*(data.fit_on_fold(k, folds) for k in range(folds)), strict=True)
    return torch.cat(outputs, dim=1), torch.cat(targets)
