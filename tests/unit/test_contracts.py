"""The recipe and ensemble contracts, in-process: loss terms, transforms in chain order, members that
train as if alone, a fitted combiner that survives a weights_only checkpoint."""

import copy

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from archfuse.build import module_from_checkpoint
from archfuse.run.fit import save_final
from archfuse.validate import validate
from conftest import compose_train

MLP = ["model=mlp", "model.hidden_sizes=[16]"]
CHAIN = "recipe._target_=archfuse.recipes.chain.RecipeChain"


def build(overrides, tmp_path):
    return validate(OmegaConf.to_container(compose_train(overrides, tmp_path), resolve=True))


def batch_of(parts, n=32):
    x, y = parts.datamodule.split_tensors("train")
    return x[:n], y[:n]


def test_a_loss_term_changes_the_loss_by_exactly_that_term(tmp_path):
    parts = build([*MLP, CHAIN, "+recipe.l1._target_=contract_plugins.L1Term", "+recipe.l1.weight=0.01"], tmp_path)
    module = parts.module
    x, y = batch_of(parts)
    base, logits = module.ensemble.training_loss(module.net, (x, y), module.criterion)
    loss, terms = module.recipe.total_loss(base, logits, (x, y), module.net)
    expected = 0.01 * sum(p.abs().sum() for p in module.net.parameters() if p.ndim > 1)
    assert set(terms) == {"l1"} and torch.equal(terms["l1"], expected)
    assert torch.equal(loss, base + expected)
    assert torch.equal(base, F.cross_entropy(module.net(x), y))  # the base loss is the criterion's


def test_transforms_apply_in_chain_order(tmp_path):
    parts = build([*MLP, CHAIN, "+recipe.a._target_=contract_plugins.Tag", "+recipe.a.tag=a",
                   "+recipe.b._target_=contract_plugins.Tag", "+recipe.b.tag=b"], tmp_path)
    net = parts.module.net
    assert (type(net).__name__, net.tag, net.inner.tag) == ("Tagged", "b", "a")
    assert type(net.inner.inner).__name__ == "MLP"
    assert list(parts.module.recipe.steps) == ["a", "b"]


ENSEMBLE = [*MLP, "ensemble._target_=contract_plugins.SeededMembers", "+ensemble.seeds=[1,2]"]


def test_members_trained_together_get_the_gradients_of_training_alone(tmp_path):
    parts = build(ENSEMBLE, tmp_path)
    module = parts.module
    members = module.net.members
    assert not torch.equal(members[0].net[1].weight, members[1].net[1].weight)  # own seeds, own weights
    alone = [copy.deepcopy(m) for m in members]
    x, y = batch_of(parts)
    loss, logits = module.ensemble.training_loss(module.net, (x, y), module.criterion)
    loss.backward()
    for member, copy_ in zip(members, alone, strict=True):
        F.cross_entropy(copy_(x), y).backward()
        for (name, p), q in zip(member.named_parameters(), copy_.parameters(), strict=True):
            assert torch.equal(p.grad, q.grad), name
    assert logits.shape == (32, 10)


def test_a_fitted_combiner_survives_a_weights_only_checkpoint(tmp_path):
    parts = build(ENSEMBLE, tmp_path)
    parts.module.net.combiner.weights.copy_(torch.tensor([0.3, 0.7]))
    path = tmp_path / "final.ckpt"
    save_final(parts.module, path)
    reloaded = module_from_checkpoint(str(path))
    assert torch.equal(reloaded.net.combiner.weights, torch.tensor([0.3, 0.7]))
    x, _ = batch_of(parts, 8)
    assert torch.allclose(reloaded.net(x), parts.module.net(x))


def test_a_recipe_that_keeps_per_sample_state_gets_the_samples_indices(tmp_path):
    parts = build([*MLP, CHAIN, "+recipe.probe._target_=contract_plugins.IndexProbe"], tmp_path)
    assert parts.datamodule.include_index
    x, y, index = next(iter(parts.datamodule.train_dataloader()))
    pool_x, pool_y = parts.datamodule._pool
    assert torch.equal(x, pool_x[index]) and torch.equal(y, pool_y[index])
    plain = build(MLP, tmp_path)
    assert not plain.datamodule.include_index and len(next(iter(plain.datamodule.train_dataloader()))) == 2
