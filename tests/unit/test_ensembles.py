"""The ensemble strategies' rules as pure functions of member logits, their fitting on held-out
predictions, and their bad input."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from archfuse.ensembles.base import CombinerData
from archfuse.ensembles.mean import mean_of_logits
from archfuse.ensembles.base import mean_of_probabilities
from archfuse.ensembles.members import choose_members, disagreement
from archfuse.ensembles.vote import majority_vote
from archfuse.ensembles.weighted import fit_grid, fit_nll, simplex_grid, weighted_mean
from archfuse.errors import ConfigError
from conftest import plugin


def noisy_members(n: int = 600, c: int = 5, qualities=(3.0, 0.3), seed: int = 0):
    """K x N x C logits: member k puts ``qualities[k]`` extra logit on the true class, plus noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, c, (n,), generator=g)
    logits = torch.stack([torch.randn(n, c, generator=g) + q * F.one_hot(y, c) for q in qualities])
    return logits, y


def same_prediction(a: torch.Tensor, b: torch.Tensor) -> bool:
    return bool((a.argmax(-1) == b.argmax(-1)).all())


# -- identical members equal one member ----------------------------------------------------------
@pytest.mark.parametrize("k", [1, 3])
def test_identical_members_equal_one_member(k):
    one = torch.randn(50, 7)
    stacked = one.expand(k, 50, 7)
    expected = one.log_softmax(-1)
    assert torch.allclose(mean_of_probabilities(stacked), expected, atol=1e-5)
    assert torch.allclose(mean_of_logits(stacked), one)
    assert torch.allclose(weighted_mean(stacked, torch.rand(k).softmax(0)), expected, atol=1e-5)
    assert same_prediction(majority_vote(stacked, torch.full((k,), 1 / k)), one)


def test_an_ensemble_net_of_copies_of_one_network_predicts_as_it_does():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 4))
    x = torch.randn(20, 1, 4, 4)
    for strategy in (plugin("ensemble", "mean", size=3), plugin("ensemble", "mean", combine="logits", size=3), plugin("ensemble", "weighted", size=3), plugin("ensemble", "vote", size=3)):
        ensemble = strategy.build([net, net, net], 4)
        out = ensemble(x)
        assert out.shape == (20, 4)
        assert same_prediction(out, net(x))


# -- weighted: fitted weights --------------------------------------------------------------------
def test_fitted_weights_favour_the_better_member():
    logits, y = noisy_members(qualities=(3.0, 0.3, 0.0))
    for weights in (fit_nll(logits, y), fit_grid(logits, y, 0.1)):
        assert weights.sum() == pytest.approx(1.0, abs=1e-5) and (weights >= 0).all()
        assert weights[0] > 0.8 and weights[0] > weights[1] >= 0  # far from uniform (1/3 each)
    # ... and the fitted mixture's log-loss is no worse than the uniform one's.
    uniform = F.nll_loss(weighted_mean(logits, torch.full((3,), 1 / 3)), y)
    assert F.nll_loss(weighted_mean(logits, fit_nll(logits, y)), y) <= uniform


def test_members_of_equal_quality_get_near_uniform_weights():
    logits, y = noisy_members(n=4000, qualities=(2.0, 2.0), seed=1)
    weights = fit_nll(logits, y)
    assert weights.tolist() == pytest.approx([0.5, 0.5], abs=0.08)


def test_the_simplex_grid_covers_the_simplex():
    grid = simplex_grid(3, 0.5)
    assert sorted(map(tuple, grid.tolist())) == sorted([(0, 0, 1), (0, 0.5, 0.5), (0, 1, 0), (0.5, 0, 0.5),
                                                        (0.5, 0.5, 0), (1, 0, 0)])
    assert len(simplex_grid(3, 0.1)) == 66  # C(12, 2)


def test_weighted_fit_writes_the_weights_into_the_combiner_buffer():
    logits, y = noisy_members(qualities=(0.0, 3.0))
    strategy = plugin("ensemble", "weighted", size=2)
    net = strategy.build([nn.Identity(), nn.Identity()], 5)
    data = CombinerData(data=None, log_dir=None, member_logits=lambda split: (logits, y))
    report = strategy.fit(net, data)
    assert report["fitted"]["weights"][1] > 0.8
    assert net.combiner.weights.tolist() == pytest.approx(report["fitted"]["weights"])
    assert "combiner.weights" in net.state_dict()  # a buffer: saved in every checkpoint
    assert report["val"]["member_acc"][1] > report["val"]["member_acc"][0]
    assert report["val"]["gain_over_mean"] > 0 and report["metrics"]["ensemble/val_acc"] == report["val"]["acc"]


def test_given_weights_are_normalised_and_kept():
    strategy = plugin("ensemble", "weighted", weights=[1, 3], size=2)
    net = strategy.build([nn.Identity(), nn.Identity()], 5)
    assert net.combiner.weights.tolist() == [0.25, 0.75]
    logits, y = noisy_members()
    data = CombinerData(data=None, log_dir=None, member_logits=lambda split: (logits, y))
    assert strategy.fit(net, data)["tensors"]["weights"] == [0.25, 0.75]


# -- vote ------------------------------------------------------------------------------------------
def test_majority_vote_wins_over_probability():
    # two members say class 0 weakly, one says class 1 with near certainty: the majority wins
    logits = torch.tensor([[[1.0, 0.0]], [[1.0, 0.0]], [[-10.0, 10.0]]])
    assert majority_vote(logits, torch.full((3,), 1 / 3)).argmax(-1).item() == 0
    assert mean_of_probabilities(logits).argmax(-1).item() == 1  # a soft average says otherwise


def test_a_tied_vote_goes_to_the_larger_summed_probability():
    # members 0, 1 vote class 0 weakly; members 2, 3 vote class 1 strongly: a tie, broken by probability
    logits = torch.tensor([[[0.2, 0.0, -5]], [[0.2, 0.0, -5]], [[0.0, 4.0, -5]], [[0.0, 4.0, -5]]])
    assert majority_vote(logits, torch.full((4,), 0.25)).argmax(-1).item() == 1
    flipped = logits[..., [1, 0, 2]]  # the same tie with the classes swapped
    assert majority_vote(flipped, torch.full((4,), 0.25)).argmax(-1).item() == 0


def test_weighted_votes_and_finite_log_shares():
    logits = torch.tensor([[[1.0, 0.0]], [[1.0, 0.0]], [[0.0, 1.0]]])
    out = majority_vote(logits, torch.tensor([0.2, 0.2, 0.6]))
    assert out.argmax(-1).item() == 1 and torch.isfinite(out).all()
    assert out.exp().sum().item() == pytest.approx(1.0)


def test_disagreement_is_the_share_of_different_predictions():
    logits = torch.tensor([[[1.0, 0.0], [1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]]])
    assert disagreement(logits) == [[0.0, 0.5], [0.5, 0.0]]


# -- members ---------------------------------------------------------------------------------------
def test_members_by_size_names_and_checkpoints():
    specs = choose_members({"_target_": "m.M"}, 7, 3, None, None)
    assert [s.seed for s in specs] == [7, 8, 9] and all(s.model == {"_target_": "m.M"} for s in specs)
    specs = choose_members({}, 0, 1, ["seed003", {"name": "convnet", "width": 8}], None)
    assert specs[0].model["_target_"].endswith("Seed003")
    assert specs[1].model["_target_"].endswith("ConvNet") and specs[1].model["width"] == 8
    assert specs[1].model["depth"] == 3  # the other options from conf/model/convnet.yaml
    specs = choose_members({}, 0, 1, None, ["a.ckpt", "b.ckpt"])
    assert [(s.checkpoint, s.frozen, s.key) for s in specs] == [("a.ckpt", True, "ensemble.checkpoints[0]"),
                                                                ("b.ckpt", True, "ensemble.checkpoints[1]")]


BAD = [
    (lambda: plugin("ensemble", "mean", size=0), "ensemble.size: must be a positive integer"),
    (lambda: plugin("ensemble", "mean", combine="median"), "ensemble.combine: unknown combination 'median'"),
    (lambda: plugin("ensemble", "weighted", fit="cv"), "ensemble.fit: unknown fit 'cv'"),
    (lambda: plugin("ensemble", "weighted", weights=[1, -1]), "ensemble.weights: must be a list of non-negative numbers"),
    (lambda: plugin("ensemble", "weighted", weights=[0, 0]), "ensemble.weights: must not all be zero"),
    (lambda: plugin("ensemble", "weighted", weights=[1, 2, 3], size=2).build([nn.Identity()] * 2, 3),
     "ensemble.weights: has 3 values but the ensemble has 2 members"),
    (lambda: plugin("ensemble", "vote", weights=[1], size=2).build([nn.Identity()] * 2, 3),
     "ensemble.weights: has 1 values but the ensemble has 2 members"),
    (lambda: plugin("ensemble", "weighted", grid_step=0.3), "ensemble.grid_step: must divide 1 into equal steps"),
    (lambda: plugin("ensemble", "weighted", fit="grid", grid_step=0.01, size=8).build([nn.Identity()] * 8, 3),
     "ensemble.grid_step: a grid of step 0.01 over 8 members has"),
    (lambda: choose_members({}, 0, 1, ["resnet9000"], None), "ensemble.members[0]: unknown model config 'resnet9000'"),
    (lambda: choose_members({}, 0, 1, ["seed003"], ["a.ckpt"]), "ensemble.members: give ensemble.members or"),
    (lambda: plugin("ensemble", "mean", from_sweep="outputs/sweeps/s", members=["seed003"]),
     "ensemble.from_sweep: give ensemble.from_sweep,"),
    (lambda: plugin("ensemble", "mean", from_sweep="outputs/sweeps/s", top_k=0), "ensemble.top_k: must be a positive integer"),
    (lambda: plugin("ensemble", "mean", from_sweep="/nonexistent/sweep"), "ensemble.from_sweep: /nonexistent/sweep is not a sweep directory"),
]


@pytest.mark.parametrize("make, message", BAD, ids=[m.split(":")[0] + str(i) for i, (_, m) in enumerate(BAD)])
def test_bad_input_names_the_key(make, message):
    with pytest.raises(ConfigError) as err:
        make()
    assert message in str(err.value)


def test_members_with_outputs_of_different_shapes_are_refused():
    net = plugin("ensemble", "mean", size=2).build([nn.Linear(4, 3), nn.Linear(4, 5)], 3)
    with pytest.raises(ConfigError, match=r"ensemble.members: the members' outputs differ in shape \(member 0: "
                                          r"\(2, 3\), member 1: \(2, 5\)\)"):
        net(torch.zeros(2, 4))


# -- stack -----------------------------------------------------------------------------------------
def sklearn_logreg():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(max_iter=1000)


class SplitsSeen:
    """CombinerData.member_logits that records which splits were asked for."""

    def __init__(self, splits):
        self.splits, self.asked = splits, []

    def __call__(self, split):
        self.asked.append(split)
        if split not in self.splits:
            raise AssertionError(f"the combiner asked for {split} predictions")
        return self.splits[split]


def test_stacking_fits_only_on_held_out_validation_predictions():
    from archfuse.ensembles.stack import holdout_split

    val, y = noisy_members(n=400, qualities=(2.5, 0.5), seed=3)
    test = noisy_members(n=200, qualities=(2.5, 0.5), seed=4)
    # the fit alone (fallback: the rest of validation also chooses among candidates: test_ensembles_choice.py)
    strategy = plugin("ensemble", "stack", estimator=sklearn_logreg(), holdout=0.5, fallback=False, size=2)
    fit_idx, rest_idx = holdout_split(y, 0.5, 0)
    assert len(fit_idx) == 200 and not set(fit_idx.tolist()) & set(rest_idx.tolist())

    def fitted(val_logits, test_logits):
        net = strategy.build([nn.Identity(), nn.Identity()], 5)
        seen = SplitsSeen({"val": (val_logits, y), "test": test_logits})
        report = strategy.fit(net, CombinerData(data=None, log_dir=None, member_logits=seen))
        assert "train" not in seen.asked  # never a prediction on an image a member trained on
        return net.combiner.coef.clone(), report

    coef, report = fitted(val, test)
    assert report["fitted"]["fit_samples"] == 200 and report["fitted"]["holdout_samples"] == 200
    # Changing every prediction outside the fitting part (the rest of validation, all of test) changes nothing.
    changed = val.clone()
    changed[:, rest_idx] = torch.randn_like(changed[:, rest_idx]) * 10
    coef2, _ = fitted(changed, (torch.randn(2, 200, 5), test[1]))
    assert torch.equal(coef, coef2)
    # ... changing the fitting part does.
    moved = val.clone()
    moved[:, fit_idx] = torch.randn_like(moved[:, fit_idx])
    assert not torch.equal(coef, fitted(moved, test)[0])
    # The meta-learner trusts the better member: its coefficients on member 0's features are larger.
    assert coef[:, :5].abs().sum() > coef[:, 5:].abs().sum()
    assert report["fitted"]["holdout_val_acc"] >= max(report["fitted"]["holdout_member_val_acc"]) - 0.03


def test_the_stack_rule_is_its_linear_model():
    from archfuse.ensembles.stack import linear_stack, member_features

    val, y = noisy_members(n=300, qualities=(2.0, 1.0, 0.5))
    strategy = plugin("ensemble", "stack", estimator=sklearn_logreg(), size=3)
    net = strategy.build([nn.Identity()] * 3, 5)
    assert same_prediction(net.combiner(val), member_features(val).view(300, 3, 5).mean(1))  # before fitting
    learner = sklearn_logreg().fit(member_features(val).numpy(), y.numpy())
    from archfuse.ensembles.stack import linear_tensors

    coef, intercept = linear_tensors(learner, 5, 15)
    ours = linear_stack(val, coef, intercept)
    assert torch.allclose(ours, torch.as_tensor(learner.decision_function(member_features(val).numpy())).float(),
                          atol=1e-4)


def test_a_non_linear_meta_learner_is_refused():
    from sklearn.ensemble import RandomForestClassifier

    from archfuse.ensembles.stack import Stack

    with pytest.raises(ConfigError, match="ensemble.estimator: RandomForestClassifier is not a linear classifier.*"
                                          "not supported for saving"):
        plugin("ensemble", "stack", estimator=RandomForestClassifier())
    with pytest.raises(ConfigError, match="ensemble.holdout: must be a share"):
        plugin("ensemble", "stack", estimator=sklearn_logreg(), holdout=1.0)


# -- cascade ---------------------------------------------------------------------------------------
def test_the_cascade_sends_fewer_samples_on_as_its_threshold_falls():
    from archfuse.ensembles.cascade import answering_stage

    logits, _ = noisy_members(n=500, qualities=(1.0, 2.0, 3.0))
    order = torch.arange(3)
    sent_on = []
    for t in (0.99, 0.8, 0.6, 0.4, 0.0):
        stage = answering_stage(logits, order, torch.full((2,), t))
        sent_on.append(int((stage > 0).sum()))
    assert sent_on == sorted(sent_on, reverse=True) and sent_on[0] > sent_on[-1] == 0
    assert (answering_stage(logits, order, torch.full((2,), 2.0)) == 2).all()  # 'never': all to the last


def test_the_cascade_network_runs_only_the_open_samples_and_agrees_with_its_rule():
    from archfuse.ensembles.cascade import Cascade, answering_stage, cascade

    torch.manual_seed(0)
    calls = []

    class Counting(nn.Linear):
        def forward(self, x):
            calls.append((self.out_features, len(x)))
            return super().forward(x) * 3

    members = [Counting(6, 4), Counting(6, 4)]
    net = plugin("ensemble", "cascade", size=2).build(members, 4).eval()
    net.combiner.thresholds.fill_(0.6)
    x = torch.randn(64, 6)
    with torch.no_grad():
        stacked = net.member_logits(x)
        calls.clear()
        out = net(x)
    assert torch.allclose(out, cascade(stacked, net.combiner.order, net.combiner.macs, net.combiner.thresholds),
                          atol=1e-5)
    open_after_first = int((answering_stage(stacked, net.combiner.order, net.combiner.thresholds) > 0).sum())
    assert calls == [(4, 64), (4, open_after_first)] and 0 < open_after_first < 64


def test_cascade_fit_orders_by_cost_and_meets_its_target():
    from archfuse.ensembles.cascade import Cascade

    class Fixed(nn.Module):  # a member whose cost is a linear layer of `width`
        def __init__(self, width):
            super().__init__()
            self.layer = nn.Linear(4, width)

        def forward(self, x):
            return self.layer(x)[:, :5]

    val, y = noisy_members(n=400, qualities=(3.0, 1.0))  # member 0: accurate, member 1: poor
    class Data:
        input_shape = (4,)

        @staticmethod
        def split_tensors(split):
            return torch.randn(10, 4), torch.zeros(10, dtype=torch.long)

    data = CombinerData(data=Data(), log_dir=None,
                        member_logits=lambda split: (val, y))
    strategy = plugin("ensemble", "cascade", size=2)
    net = strategy.build([Fixed(64), Fixed(8)], 5)  # member 1 is the cheaper: it goes first
    report = strategy.fit(net, data)["fitted"]
    assert report["order"] == [1, 0] and report["macs"] == [256, 32]
    assert report["val_acc"] >= report["val_acc_of_last"]
    assert sum(report["val_stage_shares"]) == pytest.approx(1.0)
    assert 32 <= report["val_expected_macs"] <= 32 + 256
    assert report["test_latency_ms_per_sample"] > 0
    budget = plugin("ensemble", "cascade", target="max_cost", max_macs=100, size=2)
    net = budget.build([Fixed(64), Fixed(8)], 5)
    assert budget.fit(net, data)["fitted"]["val_expected_macs"] <= 100
    with pytest.raises(ConfigError, match="ensemble.max_macs: 10 MACs per sample cannot be met: the cheapest "
                                          "member alone costs 32"):
        plugin("ensemble", "cascade", target="max_cost", max_macs=10, size=2).check(net, data.data)
    with pytest.raises(ConfigError, match="ensemble.max_macs: target max_cost needs the budget"):
        plugin("ensemble", "cascade", target="max_cost")


# -- concat ----------------------------------------------------------------------------------------
def test_concat_fuses_the_penultimate_features_with_a_new_head():
    from archfuse.ensembles.concat import Concat
    from archfuse.models.seed001 import Seed001
    from archfuse.models.seed003 import Seed003

    torch.manual_seed(0)
    a, b = Seed001(), Seed003()
    keys = (set(a.state_dict()), set(b.state_dict()))
    net = plugin("ensemble", "concat", size=2).build([a, b], 10)
    assert net.head.in_features == 320 + 128
    x = torch.randn(5, 1, 28, 28)
    features, logits = net.features_and_logits(x)
    assert [f.shape for f in features] == [(5, 320), (5, 128)]
    assert torch.allclose(logits[0], a(x)) and torch.allclose(logits[1], b(x))
    assert net(x).shape == (5, 10)
    assert (set(a.state_dict()), set(b.state_dict())) == keys  # the members' own keys are unchanged
    # freeze_members: the head's loss does not reach the members; their own losses do.
    loss, _ = plugin("ensemble", "concat", freeze_members=True, size=2).training_loss(net, (x, torch.arange(5)), nn.CrossEntropyLoss())
    loss.backward()
    own = nn.functional.cross_entropy(a(x), torch.arange(5))
    a_grad = a.classifier[-1].weight.grad.clone()
    a.zero_grad()
    own.backward()
    assert torch.allclose(a_grad, a.classifier[-1].weight.grad, atol=1e-6)
