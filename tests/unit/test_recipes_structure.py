"""The structure recipes in-process, on the real after-fit path (run_recipe_steps: measure, change,
fine-tune, measure): sparsity reached, channels physically gone, exact merges and grow equal within
1e-5, cut changes the structure, L1 raises the share of near-zero weights; every changed network
reloads from a weights_only checkpoint; bad options are one ConfigError naming the key."""

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from archfuse.build import module_from_checkpoint
from archfuse.errors import ConfigError
from archfuse.recipes.merge import fold, linear_cka
from archfuse.recipes.regularize import weight_report
from archfuse.run.after_fit import run_recipe_steps
from archfuse.run.fit import fit_and_test, save_final
from archfuse.validate import validate
from conftest import compose_train

FAST = ["debug=fast", "quiet=true", "trainer.num_threads=1", "~logger", "cost.repeats=1", "cost.warmup=0"]


def setup(overrides: list[str], tmp_path: Path):
    config = OmegaConf.to_container(compose_train([*FAST, *overrides], tmp_path), resolve=True)
    return config, validate(config)


def after_fit(overrides: list[str], tmp_path: Path):
    """The recipe steps on the freshly built network (no first fit): (parts, reports)."""
    config, parts = setup(overrides, tmp_path)
    return parts, run_recipe_steps(parts.module, parts.datamodule, config, tmp_path / "run", quiet=True)


def assert_reloads(parts, tmp_path: Path) -> None:
    """The changed network comes back from its checkpoint (weights_only) and computes the same."""
    path = tmp_path / "final.ckpt"
    save_final(parts.module, path)
    reloaded = module_from_checkpoint(str(path)).net.eval()
    x = parts.datamodule.split_tensors("val")[0][:16]
    with torch.no_grad():
        assert torch.allclose(reloaded(x), parts.module.net.eval()(x), atol=1e-6)


def convs(net: nn.Module) -> list[nn.Conv2d]:
    return [m for m in net.modules() if isinstance(m, nn.Conv2d)]


@pytest.mark.parametrize("scope", ["global", "layer"])
def test_prune_reaches_the_amount_and_is_permanent(tmp_path, scope):
    parts, (step,) = after_fit(["model=seed003", "recipe=prune", "recipe.prune.amount=0.6",
                                f"recipe.prune.scope={scope}"], tmp_path)
    net = parts.module.net
    weights = [m.weight for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights)
    assert step["sparsity"] == pytest.approx(0.6, abs=1e-3) and zeros == pytest.approx(0.6, abs=1e-3)
    if scope == "layer":  # every layer at the amount
        assert all(s == pytest.approx(0.6, abs=2e-3) for s in step["layer_sparsity"].values())
    assert not any("_orig" in k or "_mask" in k for k in net.state_dict())  # permanent: plain weights
    assert step["sparse_size_bytes"] < 0.6 * step["dense_size_bytes"]
    assert step["after"]["params"] == step["before"]["params"]  # dense shapes: nothing claimed about speed
    assert_reloads(parts, tmp_path)


def test_iterative_prune_rises_during_training(tmp_path):
    config, parts = setup(["model=seed003", "recipe=prune", "recipe.prune.schedule=iterative",
                           "recipe.prune.amount=0.5", "recipe.prune.fine_tune_epochs=0",
                           "trainer.max_epochs=2"], tmp_path)
    (callback,) = parts.module.recipe.callbacks()
    parts.module.recipe.callbacks = lambda: [callback]  # the same object, to read its history
    result = fit_and_test(config, parts, tmp_path / "run", choices={})
    assert callback.history == pytest.approx([0.25, 0.5], abs=1e-3)
    assert result["recipe"][0]["sparsity"] == pytest.approx(0.5, abs=1e-3)


@pytest.mark.parametrize("importance", ["l1", "l2", "taylor", "bn_scale"])
def test_prune_channels_removes_channels_physically(tmp_path, importance):
    model = ["model=convnet", "model.depth=2", "model.batch_norm=true"] if importance == "bn_scale" else ["model=seed003"]
    parts, (step,) = after_fit([*model, "recipe=prune_channels", "recipe.prune_channels.ratio=0.5",
                                f"recipe.prune_channels.importance={importance}",
                                "recipe.prune_channels.fine_tune_epochs=0"], tmp_path)
    net = parts.module.net
    assert [c.out_channels for c in convs(net)] == [16, 32]
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    # bn_scale ranks only channels that have a batch norm: the fc layer keeps its units
    assert linears[0].in_features == 32 * 7 * 7 and linears[0].out_features == (128 if importance == "bn_scale" else 64)
    assert linears[-1].out_features == 10  # the classifier keeps its outputs
    assert step["params_kept"] == pytest.approx(step["after"]["params"] / step["before"]["params"], abs=1e-4)
    assert step["params_kept_expected"] == 0.25
    assert step["params_kept"] == pytest.approx(0.5 if importance == "bn_scale" else 0.25, abs=0.01)
    assert step["after"]["macs"] < 0.4 * step["before"]["macs"]
    assert_reloads(parts, tmp_path)


def test_prune_channels_global_iterative_steps(tmp_path):
    parts, (step,) = after_fit(["model=seed003", "recipe=prune_channels", "recipe.prune_channels.scope=global",
                                "recipe.prune_channels.iterative_steps=2",
                                "recipe.prune_channels.fine_tune_epochs=1"], tmp_path)
    assert [s["step"] for s in step["steps"]] == [1, 2]
    assert step["steps"][0]["params"] > step["steps"][1]["params"] == step["after"]["params"]
    assert (tmp_path / "run" / "recipe_1_prune_channels" / "fine_tune_2" / "checkpoints").is_dir()
    assert_reloads(parts, tmp_path)


def test_regularize_terms_cover_weights_not_biases_or_norms(tmp_path):
    _, parts = setup(["model=convnet", "model.batch_norm=true", "model.depth=2", "recipe=regularize",
                      "recipe.regularize.l1=0.01", "recipe.regularize.l2=0.1"], tmp_path)
    module = parts.module
    weights = [m.weight for m in module.net.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    terms = module.recipe.loss_terms(None, None, module)
    assert torch.allclose(terms["regularize_l1"], 0.01 * sum(w.abs().sum() for w in weights))
    assert torch.allclose(terms["regularize_l2"], 0.1 * sum(w.pow(2).sum() for w in weights))


def test_l1_raises_the_share_of_near_zero_weights(tmp_path):
    shares = {}
    for l1 in (0.0, 1e-3):
        config, parts = setup(["model=mlp", "model.hidden_sizes=[64]", "recipe=regularize", "data.train_subset=1024",
                               f"recipe.regularize.l1={l1}", "trainer.max_epochs=3", "optimizer.lr=0.003"],
                              tmp_path / str(l1))
        result = fit_and_test(config, parts, tmp_path / str(l1) / "run", choices={})
        (step,) = result["recipe"]
        assert step["near_zero_share"] == weight_report(parts.module.net, 1e-3)["near_zero_share"]
        shares[l1] = step["near_zero_share"]
    assert shares[1e-3] > 3 * shares[0.0]  # measured: 0.19 against 0.023


def test_cut_removes_blocks_and_rebuilds_the_head(tmp_path):
    parts, (step,) = after_fit(["model=convnet", "recipe=cut", "recipe.cut.blocks=[1]",
                                "recipe.cut.fine_tune_epochs=0"], tmp_path)
    net = parts.module.net  # blocks of 32, 64, 128 channels, each pooled: 28 -> 14 -> 7 -> 3
    assert [(c.in_channels, c.out_channels) for c in convs(net)] == [(1, 32), (32, 128)]
    assert net.classifier[1].in_features == 128 * 7 * 7  # one pool fewer
    assert step["removed_blocks"] == [1] and step["blocks_after"] == 2
    assert step["after"]["params"] != step["before"]["params"]
    assert_reloads(parts, tmp_path)
    parts, (step,) = after_fit(["model=convnet", "recipe=cut", "recipe.cut.last=2", "recipe.cut.fine_tune_epochs=0"],
                               tmp_path / "b")
    assert [c.out_channels for c in convs(parts.module.net)] == [32]


def test_exact_folds_keep_outputs_within_1e5():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
                        nn.Conv2d(8, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Flatten(),
                        nn.Linear(4 * 36, 32), nn.Linear(32, 16), nn.ReLU(), nn.Linear(16, 3))
    x = torch.randn(64, 1, 6, 6)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):  # non-trivial statistics and affine parameters
            nn.init.uniform_(m.weight, 0.5, 2.0)
            nn.init.normal_(m.bias)
    net.train()(x)
    net.eval()
    with torch.no_grad():
        reference = net(x)
        done = fold(net)
        merged = net(x)
    assert done == {"bn": [["0", "1"], ["3", "4"]], "linear": [["6", "7"]]}
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    assert sum(isinstance(m, nn.Linear) for m in net.modules()) == 2
    assert (merged - reference).abs().max() < 1e-5


def test_linear_cka_is_one_for_a_rotation_and_low_for_noise():
    torch.manual_seed(0)
    x = torch.randn(200, 20)
    q, _ = torch.linalg.qr(torch.randn(20, 20))
    assert linear_cka(x, 3 * x @ q) == pytest.approx(1.0, abs=1e-9)
    assert linear_cka(x, torch.randn(200, 20)) < 0.3


def test_merge_folds_and_removes_the_most_similar_block(tmp_path):
    parts, (step,) = after_fit(["model=convnet", "model.batch_norm=true", "recipe=merge",
                                "recipe.merge.fine_tune_epochs=0"], tmp_path)
    assert len(step["folded_bn"]) == 3 and step["fold_max_abs_diff"] < 1e-5
    scores = step["block_cka"]
    assert len(scores) == 2 and all(0 <= s <= 1 for s in scores)
    assert step["removed_block"] == scores.index(max(scores)) + 1
    assert len(convs(parts.module.net)) == 2
    assert sum(isinstance(m, nn.MaxPool2d) for m in parts.module.net.modules()) == 3  # the map keeps its size
    assert step["after"]["params"] < step["before"]["params"]
    assert not any(isinstance(m, nn.BatchNorm2d) for m in parts.module.net.modules())
    assert_reloads(parts, tmp_path)


def test_grow_inserts_a_block_that_keeps_outputs_within_1e5(tmp_path):
    config, parts = setup(["recipe=grow", "recipe.grow.position=0", "recipe.grow.fine_tune_epochs=0"], tmp_path)
    x = parts.datamodule.split_tensors("val")[0][:64]
    net = parts.module.net.eval()
    with torch.no_grad():
        reference = net(x)
    (step,) = run_recipe_steps(parts.module, parts.datamodule, config, tmp_path / "run", quiet=True)
    with torch.no_grad():
        grown = parts.module.net.eval()(x)
    assert (grown - reference).abs().max() < 1e-5 and step["insert_max_abs_diff"] < 1e-5
    assert type(parts.module.net.features[3]).__name__ == "ResidualBlock"  # after block 0 (conv, relu, pool)
    assert step["after"]["params"] == step["before"]["params"] + 2 * (32 * 32 * 9 + 32)
    assert_reloads(parts, tmp_path)


ERRORS = [
    (["recipe=prune", "recipe.prune.amount=1.0"], "recipe.prune.amount: must be a number in [0, 1), got 1.0"),
    (["recipe=prune", "recipe.prune.scope=row"], "recipe.prune.scope: unknown value 'row'; choose one of global, layer"),
    (["recipe=prune_channels", "recipe.prune_channels.ratio=-0.1"], "recipe.prune_channels.ratio: must be a number in [0, 1)"),
    (["recipe=prune_channels", "recipe.prune_channels.importance=bn_scale"],
     "recipe.prune_channels.importance: bn_scale ranks channels by batch-norm scales, but Seed000 has no BatchNorm"),
    (["recipe=cut", "recipe.cut.blocks=[5]"], "recipe.cut.blocks: block 5 does not exist: the model has 3 conv blocks"),
    (["recipe=cut", "recipe.cut.last=3"], "recipe.cut.last: the model has 3 conv blocks; at most 2 can be cut"),
    (["model=mlp", "recipe=cut"], "recipe.cut: MLP has no nn.Sequential of Conv2d blocks"),
    (["recipe=grow", "recipe.grow.position=3"], "recipe.grow.position: there is no block 3 to grow after"),
    (["recipe=merge", "recipe.merge.similar=false"], "recipe.merge.fold: Seed000 has no conv + batch norm"),
    (["recipe=regularize", "recipe.regularize.dropout=0.5"], "recipe.regularize.dropout: Seed000 has no Dropout layer"),
    (["recipe=regularize", "recipe.regularize.l1=-1"], "recipe.regularize.l1: must be a number >= 0, got -1"),
]


@pytest.mark.parametrize("overrides, message", ERRORS, ids=[m.split(":")[0] + str(i) for i, (_, m) in enumerate(ERRORS)])
def test_bad_options_name_their_key(tmp_path, overrides, message):
    with pytest.raises(ConfigError) as err:
        setup(overrides, tmp_path)
    assert message in str(err.value)


def test_a_cut_model_trained_on_and_cut_again_records_both_cuts(tmp_path):
    cut = ["model=convnet", "recipe=cut", "recipe.cut.fine_tune_epochs=0"]
    parts, _ = after_fit(cut, tmp_path)
    first = tmp_path / "first.ckpt"
    save_final(parts.module, first)
    config, parts = setup([*cut, f"ckpt_path={first}"], tmp_path / "b")
    assert len(convs(parts.module.net)) == 2  # the checkpoint's cut, replayed
    run_recipe_steps(parts.module, parts.datamodule, config, tmp_path / "b" / "run", quiet=True)
    assert len(convs(parts.module.net)) == 1 and len(parts.module.recipe.steps["cut"].applied) == 2
    assert_reloads(parts, tmp_path / "b")
