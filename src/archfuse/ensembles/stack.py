"""ensemble=stack: a scikit-learn meta-learner on the members' log-probabilities.

The meta-learner is fitted on a held-out share (``holdout``) of the validation predictions only, never
on a prediction of an image a member trained on: the members never see validation images, and the
remaining part of validation measures the stack honestly. Any linear classifier (``estimator._target_``,
LogisticRegression by default) works: its coefficients and intercepts are stored as the combiner's
tensors, so the checkpoint holds the whole stack and loads with weights_only. A non-linear estimator
has no such tensors and is refused before training.
"""

from typing import Any

import torch
from torch import Tensor, nn

from archfuse.checks import check_number, is_int, must_be
from archfuse.ensembles.base import CombinerData
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


def fit_on_holdout(net: nn.Module, data: CombinerData, estimator: Any, holdout: float, seed: int) -> dict[str, Any]:
    """Fit the meta-learner on a held-out share of the validation predictions (images no member trained
    on) into the combiner's tensors; the rest of validation measures it."""
    logits, y = data.member_logits("val")
    fit_idx, rest_idx = holdout_split(y, holdout, seed)
    learner = clone(estimator)
    learner.fit(member_features(logits[:, fit_idx]).numpy(), y[fit_idx].numpy())
    coef, intercept = linear_tensors(learner, net.combiner.coef.shape[0], net.combiner.coef.shape[1])
    net.combiner.coef.copy_(coef)
    net.combiner.intercept.copy_(intercept)
    rest = logits[:, rest_idx]
    return {"estimator": repr(estimator), "fit_samples": len(fit_idx),
            "holdout_samples": len(rest_idx), "holdout_val_acc": accuracy_of(net.combiner(rest), y[rest_idx]),
            "holdout_member_val_acc": [accuracy_of(m, y[rest_idx]) for m in rest]}


class Stack(MemberEnsemble):
    combine = staticmethod(linear_stack)

    def __init__(self, *, estimator: Any, holdout: float, oof_folds: int, seed: int, **choice: Any):
        super().__init__(**choice)
        if not is_int(oof_folds, 0) or oof_folds == 1:
            raise must_be("ensemble.oof_folds", "0 (fit on a held-out share of validation) or at least 2 folds",
                          oof_folds)
        if oof_folds and self.checkpoints:
            raise ConfigError("ensemble.oof_folds", "members loaded from checkpoints are not retrained, so they "
                              "have no out-of-fold predictions; use ensemble.holdout with ensemble.checkpoints")
        self.oof_folds = oof_folds
        self.holdout = check_holdout(holdout)
        self.estimator, self.seed = linear_estimator(estimator), seed

    def combiner_tensors(self, k: int, num_classes: int) -> dict[str, Tensor]:
        return mean_stack_tensors(k, num_classes)

    def fit_combiner(self, net: nn.Module, data: CombinerData) -> dict[str, Any]:
        if self.oof_folds:
            return self.fit_out_of_fold(net, data)
        return fit_on_holdout(net, data, self.estimator, self.holdout, self.seed)

    def fit_out_of_fold(self, net: nn.Module, data: CombinerData) -> dict[str, Any]:
        """Members trained afresh K times, each time on K-1 folds of the train+val pool, predict the fold
        they did not see; the meta-learner is fitted on these predictions, which cover the pool once.
        The run's own members (trained on the train split) then use it; validation measures the stack."""
        logits, y = out_of_fold_logits(data, self.oof_folds)
        learner = clone(self.estimator)
        learner.fit(member_features(logits).numpy(), y.numpy())
        coef, intercept = linear_tensors(learner, net.combiner.coef.shape[0], net.combiner.coef.shape[1])
        net.combiner.coef.copy_(coef)
        net.combiner.intercept.copy_(intercept)
        val, y_val = data.member_logits("val")
        return {"estimator": repr(self.estimator), "oof_folds": self.oof_folds, "fit_samples": len(y),
                "oof_member_acc": [accuracy_of(m, y) for m in logits], "val_acc": accuracy_of(net.combiner(val), y_val)}


def out_of_fold_logits(data: CombinerData, folds: int) -> tuple[Tensor, Tensor]:
    """(K x N x C, N): every image of the train+val pool predicted by members that never trained on it."""
    outputs, targets = zip(*(data.fit_on_fold(k, folds) for k in range(folds)), strict=True)
    return torch.cat(outputs, dim=1), torch.cat(targets)
