"""ensemble=bagging: each member trained on its own sample (bootstrap counts or disjoint shards), combined
by the mean or a stacked meta-learner fitted on held-out validation predictions."""

import pytest
import torch
from torch import nn

from archfuse.ensembles.base import CombinerData
from archfuse.errors import ConfigError

from test_ensembles import SplitsSeen, noisy_members, sklearn_logreg
from conftest import plugin


def test_bootstrap_counts_and_shards():
    from archfuse.ensembles.bagging import sample_weights

    index = torch.arange(20000)
    counts = [sample_weights(index, m, 3, "bootstrap", 0) for m in range(3)]
    for c in counts:
        assert c.mean().item() == pytest.approx(1.0, abs=0.03)  # Poisson(1): one draw per image on average
        assert (c > 0).float().mean().item() == pytest.approx(1 - 0.3679, abs=0.02)
    assert not torch.equal(counts[0], counts[1])  # each member its own sample
    assert torch.equal(counts[0], sample_weights(index, 0, 3, "bootstrap", 0))  # the same on every call
    shards = torch.stack([sample_weights(index, m, 3, "shards", 0) for m in range(3)])
    assert torch.equal(shards.sum(0), torch.ones(20000))  # disjoint, and together every image
    assert shards.mean(1).tolist() == pytest.approx([1 / 3] * 3, abs=0.02)


def test_bagging_members_learn_only_from_their_own_samples():
    from archfuse.ensembles.bagging import Bagging, sample_weights

    torch.manual_seed(0)
    strategy = plugin("ensemble", "bagging", sampling="shards", size=2)
    net = strategy.build([nn.Linear(3, 4), nn.Linear(3, 4)], 4)
    x, y, index = torch.randn(64, 3), torch.randint(0, 4, (64,)), torch.arange(64)
    loss, _ = strategy.training_loss(net, (x, y, index), nn.CrossEntropyLoss())
    loss.backward()
    outside = sample_weights(index, 0, 2, "shards", 0) == 0  # member 0's gradient from its shard alone
    net0 = nn.Linear(3, 4)
    net0.load_state_dict(net.members[0].state_dict())
    nn.functional.cross_entropy(net0(x[~outside]), y[~outside]).backward()
    assert torch.allclose(net.members[0].weight.grad, net0.weight.grad, atol=1e-6)
    with pytest.raises(ConfigError, match="ensemble.sampling: unknown sampling 'jackknife'"):
        plugin("ensemble", "bagging", sampling="jackknife")


def test_bagging_stacked_fits_its_meta_learner_on_held_out_validation():
    from types import SimpleNamespace

    from sklearn.ensemble import RandomForestClassifier

    from archfuse.ensembles.bagging import Bagging
    from archfuse.ensembles.stack import mean_stack_tensors

    strategy = plugin("ensemble", "bagging", sampling="shards", combine="stack", estimator=sklearn_logreg(), holdout=0.5, size=2)
    net = strategy.build([nn.Identity(), nn.Identity()], 5)
    assert torch.equal(net.combiner.coef, mean_stack_tensors(2, 5)["coef"])  # before fitting: the mean
    val, y = noisy_members(n=400, qualities=(2.5, 0.5), seed=3)
    seen = SplitsSeen({"val": (val, y), "test": noisy_members(n=200, qualities=(2.5, 0.5), seed=4)})
    datamodule = SimpleNamespace(sample_indices=lambda split: torch.arange(300))
    report = strategy.fit(net, CombinerData(data=datamodule, log_dir=None, member_logits=seen))
    assert "train" not in seen.asked
    fitted = report["fitted"]
    assert fitted["fit_samples"] == 200
    assert fitted["share_of_training_images_seen"] == pytest.approx([0.5, 0.5], abs=0.1)
    assert net.combiner.coef[:, :5].abs().sum() > net.combiner.coef[:, 5:].abs().sum()  # trusts the better one
    with pytest.raises(ConfigError, match="ensemble.estimator: RandomForestClassifier is not a linear classifier"):
        plugin("ensemble", "bagging", combine="stack", estimator=RandomForestClassifier())
    with pytest.raises(ConfigError, match="ensemble.combine: unknown combination 'median'; choose probs"):
        plugin("ensemble", "bagging", combine="median")
