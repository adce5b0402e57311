"""The ensemble strategies' rules as pure functions of member logits, their fitting on held-out
predictions, and their bad input."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from archfuse.ensembles.base import CombinerData
from archfuse.ensembles.mean import Mean, mean_of_logits
from archfuse.ensembles.base import mean_of_probabilities
from archfuse.ensembles.members import choose_members, disagreement
from archfuse.ensembles.vote import Vote, majority_vote
from archfuse.ensembles.weighted import Weighted, fit_grid, fit_nll, simplex_grid, weighted_mean
from archfuse.errors import ConfigError


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
    for strategy in (Mean(size=3), Mean(combine="logits", size=3), Weighted(size=3), Vote(size=3)):
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
    strategy = Weighted(size=2)
    net = strategy.build([nn.Identity(), nn.Identity()], 5)
    data = CombinerData(module=None, datamodule=None, log_dir=None, member_logits=lambda split: (logits, y))
    report = strategy.fit(net, data)
    assert report["fitted"]["weights"][1] > 0.8
    assert net.combiner.weights.tolist() == pytest.approx(report["fitted"]["weights"])
    assert "combiner.weights" in net.state_dict()  # a buffer: saved in every checkpoint
    assert report["val"]["member_acc"][1] > report["val"]["member_acc"][0]
    assert report["val"]["gain_over_mean"] > 0 and report["metrics"]["ensemble/val_acc"] == report["val"]["acc"]


def test_given_weights_are_normalised_and_kept():
    strategy = Weighted(weights=[1, 3], size=2)
    net = strategy.build([nn.Identity(), nn.Identity()], 5)
    assert net.combiner.weights.tolist() == [0.25, 0.75]
    logits, y = noisy_members()
    data = CombinerData(module=None, datamodule=None, log_dir=None, member_logits=lambda split: (logits, y))
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
    (lambda: Mean(size=0), "ensemble.size: must be a positive integer"),
    (lambda: Mean(combine="median"), "ensemble.combine: unknown combination 'median'"),
    (lambda: Weighted(fit="cv"), "ensemble.fit: unknown fit 'cv'"),
    (lambda: Weighted(weights=[1, -1]), "ensemble.weights: must be a list of non-negative numbers"),
    (lambda: Weighted(weights=[0, 0]), "ensemble.weights: must not all be zero"),
    (lambda: Weighted(weights=[1, 2, 3], size=2).build([nn.Identity()] * 2, 3),
     "ensemble.weights: has 3 values but the ensemble has 2 members"),
    (lambda: Vote(weights=[1], size=2).build([nn.Identity()] * 2, 3),
     "ensemble.weights: has 1 values but the ensemble has 2 members"),
    (lambda: Weighted(grid_step=0.3), "ensemble.grid_step: must divide 1 into equal steps"),
    (lambda: Weighted(fit="grid", grid_step=0.01, size=8).build([nn.Identity()] * 8, 3),
     "ensemble.grid_step: a grid of step 0.01 over 8 members has"),
    (lambda: choose_members({}, 0, 1, ["resnet9000"], None), "ensemble.members[0]: unknown model config 'resnet9000'"),
    (lambda: choose_members({}, 0, 1, ["seed003"], ["a.ckpt"]), "ensemble.members: give ensemble.members or"),
]


@pytest.mark.parametrize("make, message", BAD, ids=[m.split(":")[0] + str(i) for i, (_, m) in enumerate(BAD)])
def test_bad_input_names_the_key(make, message):
    with pytest.raises(ConfigError) as err:
        make()
    assert message in str(err.value)


def test_members_with_outputs_of_different_shapes_are_refused():
    net = Mean(size=2).build([nn.Linear(4, 3), nn.Linear(4, 5)], 3)
    with pytest.raises(ConfigError, match=r"ensemble.members: the members' outputs differ in shape \(member 0: "
                                          r"\(2, 3\), member 1: \(2, 5\)\)"):
        net(torch.zeros(2, 4))
