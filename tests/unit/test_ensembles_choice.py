"""Fitted combiners against their fallbacks (the best member alone, the members' mean), chosen on held-out
validation predictions: members of clearly unequal quality, a combiner that overfits and one that truly
helps, what the choice reads, and the chosen combiner in a weights_only checkpoint."""

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from sklearn.linear_model import LogisticRegression, RidgeClassifier
from torch import nn

from archfuse.ensembles.base import CombinerData
from archfuse.ensembles.choice import choose_on_holdout, cross_validated, folds_of, pick
from archfuse.errors import ConfigError
from conftest import compose_train, plugin
from test_ensembles import SplitsSeen

NOISE = 0.01  # the chosen combiner may trail the best member by this much on 4,000 fresh samples


def members(n: int, classes: int, qualities: tuple[float, ...], seed: int, shifted: tuple[int, ...] = ()):
    """K x N x C logits: member k puts ``qualities[k]`` extra logit on the true class (on the next class
    for a member in ``shifted``: informative, but wrong unless a combiner learns the shift), plus noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    logits = [torch.randn(n, classes, generator=g) + q * F.one_hot((y + (k in shifted)) % classes, classes)
              for k, q in enumerate(qualities)]
    return torch.stack(logits), y


def accuracy(logits, y) -> float:
    return float((logits.argmax(-1) == y).float().mean())


def fitted(strategy, val, num_classes: int):
    """The strategy's combiner fitted on ``val`` (and only on it: any other split is an error)."""
    net = strategy.build([nn.Identity()] * len(val[0]), num_classes)
    seen = SplitsSeen({"val": val})
    report = strategy.fit_combiner(net, CombinerData(data=None, log_dir=None, member_logits=seen))
    assert seen.asked == ["val"]  # never test, never train
    return net, report


def test_a_stack_that_overfits_falls_back_to_the_best_member():
    """The finding: one strong member, three near-random, few validation samples; the meta-learner fitted
    on half of them trails the strong member by points on fresh samples. With the fallback it does not."""
    quality = (2.0, 0.3, 0.3, 0.3)
    val, test = members(200, 10, quality, seed=0), members(4000, 10, quality, seed=1)
    best = max(accuracy(m, test[1]) for m in test[0])
    loose = LogisticRegression(C=10000.0, max_iter=1000)
    plain, _ = fitted(plugin("ensemble", "stack", estimator=loose, fallback=False, inner_cv=0, size=4), val, 10)
    assert accuracy(plain.combiner(test[0]), test[1]) < best - 0.05  # what main did
    net, report = fitted(plugin("ensemble", "stack", estimator=loose, inner_cv=0, size=4), val, 10)
    assert report["chosen"] == "best_member" and report["candidates"]["best_member"]["member"] == 0
    assert set(report["candidates"]) == {"best_member", "mean", "fitted"}
    assert report["scored_on"] == "held-out validation (100 images)"
    assert report["why"].startswith("the highest held-out accuracy (best_member ")
    assert report["holdout_val_acc"] == report["candidates"]["best_member"]["val_acc"]
    assert accuracy(net.combiner(test[0]), test[1]) >= best - NOISE
    # the inner cross-validation regularises the meta-learner: it picks a C below the loose one
    _, tuned = fitted(plugin("ensemble", "stack", estimator=loose, size=4), val, 10)
    assert tuned["C"] in (0.01, 0.1, 1.0, 10.0) and tuned["candidates"]["fitted"]["C"] == tuned["C"]
    assert tuned["inner_cv"]["folds"] == 5 and len(tuned["inner_cv"]["val_nll"]) == 4
    assert tuned["inner_cv"]["val_nll"][[0.01, 0.1, 1.0, 10.0].index(tuned["C"])] == min(tuned["inner_cv"]["val_nll"])


def test_a_stack_that_truly_helps_is_kept():
    """Member 1 is strong but shifted by one class: only a fitted stack can use it."""
    quality = (1.0, 3.0)
    val, test = members(400, 5, quality, seed=0, shifted=(1,)), members(4000, 5, quality, seed=1, shifted=(1,))
    best = max(accuracy(m, test[1]) for m in test[0])
    net, report = fitted(plugin("ensemble", "stack", estimator=LogisticRegression(max_iter=1000), size=2), val, 5)
    assert report["chosen"] == "fitted"
    assert accuracy(net.combiner(test[0]), test[1]) > best + 0.3


@pytest.mark.parametrize("fit", ["nll", "grid"])
def test_weighted_never_keeps_the_mean_of_a_strong_and_two_weak_members(fit):
    quality = (2.0, 0.3, 0.3)
    val, test = members(400, 5, quality, seed=0), members(4000, 5, quality, seed=1)
    net, report = fitted(plugin("ensemble", "weighted", fit=fit, size=3), val, 5)
    assert report["chosen"] in ("best_member", "fitted")  # the fitted weights are near one-hot: a tie
    assert report["candidates"]["mean"]["val_acc"] < report["candidates"]["best_member"]["val_acc"]
    assert report["scored_on"] == "5-fold cross-validation over the validation predictions (400 images)"
    assert accuracy(net.combiner(test[0]), test[1]) >= max(accuracy(m, test[1]) for m in test[0]) - NOISE
    assert net.combiner.weights.tolist() == pytest.approx(report["weights"])


def test_weighted_keeps_fitted_weights_that_truly_help():
    """Two good members and a useless one: the fitted weights average the two good ones and drop the third,
    better than either good one alone and than the mean of all three."""
    quality = (1.5, 1.5, 0.0)
    val, test = members(400, 5, quality, seed=0), members(4000, 5, quality, seed=1)
    net, report = fitted(plugin("ensemble", "weighted", size=3), val, 5)
    assert report["chosen"] == "fitted" and report["weights"][2] < 0.1
    uniform = accuracy(net.combiner.rule(test[0], torch.full((3,), 1 / 3)), test[1])
    ours = accuracy(net.combiner(test[0]), test[1])
    assert ours > max(accuracy(m, test[1]) for m in test[0]) + 0.05 and ours > uniform


def test_bagging_with_a_stack_falls_back_too():
    from types import SimpleNamespace

    quality = (2.0, 0.3, 0.3, 0.3)
    val, test = members(200, 10, quality, seed=0), members(4000, 10, quality, seed=1)
    strategy = plugin("ensemble", "bagging", combine="stack", estimator=LogisticRegression(C=10000.0, max_iter=1000),
                      inner_cv=0, size=4)
    net = strategy.build([nn.Identity()] * 4, 10)
    seen = SplitsSeen({"val": val})
    data = CombinerData(data=SimpleNamespace(sample_indices=lambda split: torch.arange(300)), log_dir=None,
                        member_logits=seen)
    report = strategy.fit_combiner(net, data)
    assert seen.asked == ["val"] and report["chosen"] == "best_member" and report["sampling"] == "bootstrap"
    assert accuracy(net.combiner(test[0]), test[1]) >= max(accuracy(m, test[1]) for m in test[0]) - NOISE


def test_the_choice_scores_candidates_only_on_what_their_fit_did_not_see():
    from archfuse.ensembles.stack import holdout_split, linear_stack, mean_stack_tensors

    logits, y = members(300, 5, (2.0, 0.5), seed=2)
    fit_idx, rest_idx = holdout_split(y, 0.5, 0)
    given = []

    def recording(member_logits, targets):
        given.append((member_logits.clone(), targets.clone()))
        return mean_stack_tensors(2, 5), {}

    _, report = choose_on_holdout(linear_stack, {"mean": recording}, logits, y, fit_idx, rest_idx)
    assert torch.equal(given[0][0], logits[:, fit_idx]) and torch.equal(given[0][1], y[fit_idx])
    mean_on_rest = linear_stack(logits[:, rest_idx], **mean_stack_tensors(2, 5))
    assert report["candidates"]["mean"]["val_acc"] == accuracy(mean_on_rest, y[rest_idx])
    # Cross-validation: a sample's combined logits come from a fit that never saw its fold's labels.
    from archfuse.ensembles.weighted import weighted_mean

    def fit(member_logits, targets):  # weights by each member's accuracy on the fit part
        hits = (member_logits.argmax(-1) == targets).float().mean(1)
        return {"weights": hits / hits.sum()}, {}

    folds = folds_of(y, 5)
    out = cross_validated(weighted_mean, fit, logits, y, folds)
    for fit_part, held in folds:
        assert not set(fit_part.tolist()) & set(held.tolist())
        relabelled = y.clone()
        relabelled[held] = (y[held] + 1) % 5
        assert torch.equal(cross_validated(weighted_mean, fit, logits, relabelled, folds)[held], out[held])


def test_ties_go_to_the_simpler_candidate():
    def scored(**pairs):
        return {name: {"val_acc": acc, "val_nll": nll} for name, (acc, nll) in pairs.items()}

    assert pick(scored(fitted=(0.9, 0.3), mean=(0.9, 0.3), best_member=(0.9, 0.3)))[0] == "best_member"
    assert pick(scored(fitted=(0.9, 0.25), mean=(0.9, 0.25), best_member=(0.9, 0.3)))[0] == "mean"
    chosen, why = pick(scored(fitted=(0.9, 0.2), mean=(0.9, 0.25), best_member=(0.89, 0.1)))
    assert chosen == "fitted" and why == ("mean, fitted tie on held-out accuracy (0.9000); fitted has the lowest "
                                          "log-loss (mean 0.2500, fitted 0.2000)")
    assert pick(scored(fitted=(0.91, 0.9), mean=(0.9, 0.2), best_member=(0.9, 0.1)))[0] == "fitted"


def test_the_meta_learner_without_a_c_is_fitted_as_given():
    val = members(200, 5, (2.0, 0.5), seed=0)
    _, report = fitted(plugin("ensemble", "stack", estimator=RidgeClassifier(), size=2), val, 5)
    assert report["inner_cv"] == "not run: RidgeClassifier has no parameter C" and "C" not in report
    few = members(30, 5, (2.0, 0.5), seed=0)  # 15 samples to fit on: 5 inner folds could miss a class
    _, report = fitted(plugin("ensemble", "stack", estimator=LogisticRegression(), size=2), few, 5)
    assert report["inner_cv"] == "not run: a class has fewer than 5 of the 15 samples" and "C" not in report


@pytest.mark.parametrize("strategy, options, message", [
    ("stack", {"fallback": "yes"}, "ensemble.fallback: must be true or false, got 'yes'"),
    ("stack", {"inner_cv": 1}, "ensemble.inner_cv: must be 0 (the estimator's C as given) or at least 2 folds, got 1"),
    ("stack", {"c_grid": []}, "ensemble.c_grid: must be a non-empty list of positive numbers"),
    ("bagging", {"combine": "stack", "c_grid": [0, 1]},
     "ensemble.c_grid: must be a non-empty list of positive numbers"),
    ("weighted", {"fallback_folds": 1}, "ensemble.fallback_folds: must be an integer >= 2, got 1"),
    ("weighted", {"fallback": 1}, "ensemble.fallback: must be true or false, got 1"),
])
def test_bad_choice_options_name_the_key(strategy, options, message):
    with pytest.raises(ConfigError) as err:
        plugin("ensemble", strategy, **options)
    assert message in str(err.value)


@pytest.mark.parametrize("strategy, options", [
    ("stack", ["ensemble.inner_cv=0", "ensemble.holdout=0.2", "ensemble.estimator.C=10000.0"]),
    ("weighted", []),
])
def test_the_checkpoint_reloads_the_chosen_combiner(tmp_path, strategy, options):
    from archfuse.build import module_from_checkpoint
    from archfuse.run.fit import save_final
    from archfuse.validate import validate

    config = compose_train(["model=mlp", "model.hidden_sizes=[8]", f"ensemble={strategy}", "ensemble.size=2",
                            *options], tmp_path)
    parts = validate(OmegaConf.to_container(config, resolve=True))
    module = parts.module
    val = members(200, 10, (0.3, 2.0), seed=0)  # member 1 strong, member 0 near-random
    report = module.ensemble.fit_combiner(module.net, CombinerData(data=None, log_dir=None,
                                                                   member_logits=SplitsSeen({"val": val})))
    expected = ("best_member", "fitted") if strategy == "weighted" else ("best_member",)  # weighted: a near-tie
    assert report["chosen"] in expected
    path = tmp_path / "final.ckpt"
    save_final(module, path)
    reloaded = module_from_checkpoint(str(path))
    for name, value in module.net.combiner.tensors().items():
        assert torch.equal(getattr(reloaded.net.combiner, name), value)
    x, _ = parts.datamodule.split_tensors("test")
    module.net.eval(), reloaded.net.eval()
    with torch.no_grad():
        out, member_1 = reloaded.net(x[:16]), module.net.members[1](x[:16]).log_softmax(-1)
    assert torch.allclose(out, module.net(x[:16]), atol=1e-6)
    if report["chosen"] == "best_member":  # the reloaded network answers as member 1 alone
        assert torch.allclose(out, member_1, atol=1e-5)
