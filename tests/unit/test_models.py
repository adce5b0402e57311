"""Model output shapes for every data shape, the seed models' documented sizes, the plug-in contract."""

import sys

import pytest
import torch

from archfuse.errors import ConfigError
from archfuse.models.activations import ACTIVATIONS
from archfuse.models.build import build_model, check_forward
from conftest import model_config

SHAPES = [(1, 28, 28), (3, 32, 32), (1, 8, 8)]
MODELS = {
    "seed000": {"_target_": "archfuse.models.seed000.Seed000"},
    "seed001": {"_target_": "archfuse.models.seed001.Seed001"},
    "seed003": {"_target_": "archfuse.models.seed003.Seed003"},
    "mlp": model_config("mlp", hidden_sizes=[32, 16]),
    "convnet": model_config("convnet", width=8, depth=2),
}


def make(name_or_cfg, shape=(1, 28, 28), classes=10):
    cfg = MODELS[name_or_cfg] if isinstance(name_or_cfg, str) else name_or_cfg
    return build_model(cfg, shape[0], classes, shape[1:])


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("name", MODELS)
def test_output_shape(name, shape):
    if name == "seed001" and shape[1] < 16:
        with pytest.raises(ConfigError, match="seed001 needs inputs of at least 16x16"):
            make(name, shape)
        return
    net = make(name, shape, classes=7)
    assert net(torch.randn(3, *shape)).shape == (3, 7)


def test_seed_models_keep_the_documented_flatten_sizes():
    assert make("seed000").classifier[1].in_features == 128 * 7 * 7
    assert make("seed000").classifier[1].out_features == 1000
    assert make("seed001").classifier[1].in_features == 320
    assert make("seed003").classifier[1].in_features == 64 * 7 * 7
    assert make("seed003").classifier[1].out_features == 128
    assert make("seed001", (3, 32, 32)).classifier[1].in_features == 500


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_convnet_activations(activation):
    net = make({**MODELS["convnet"], "activation": activation})
    assert any(isinstance(m, ACTIVATIONS[activation]) for m in net.modules())


def test_convnet_width_and_depth_shape_the_network():
    net = make({**MODELS["convnet"], "width": 16, "depth": 3, "batch_norm": True, "dropout": 0.2})
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [16, 32, 64]
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules()) == 3
    assert sum(isinstance(m, torch.nn.Dropout) for m in net.modules()) == 2
    small = sum(p.numel() for p in make({**MODELS["convnet"], "width": 4}).parameters())
    large = sum(p.numel() for p in make({**MODELS["convnet"], "width": 16}).parameters())
    assert large > small


@pytest.mark.parametrize("override, key", [
    ({"width": -3}, "model.width"),
    ({"depth": 0}, "model.depth"),
    ({"depth": 5}, "model.depth"),
    ({"activation": "swish2"}, "model.activation"),
    ({"kernel_size": 4}, "model.kernel_size"),
    ({"dropout": 1.5}, "model.dropout"),
])
def test_convnet_rejects_bad_values_naming_the_key(override, key):
    with pytest.raises(ConfigError) as err:
        make({**MODELS["convnet"], **override})
    assert err.value.key == key


def test_depth_limit_follows_the_input_size():
    make({**MODELS["convnet"], "depth": 3}, (1, 8, 8))
    with pytest.raises(ConfigError, match="at most 3 blocks fit"):
        make({**MODELS["convnet"], "depth": 4}, (1, 8, 8))


def test_unknown_target_names_the_key():
    with pytest.raises(ConfigError, match=r"model\._target_: cannot import 'nowhere\.Net'"):
        make({"_target_": "nowhere.Net"})


def test_user_module_receives_the_data_shape(tmp_path, monkeypatch):
    (tmp_path / "my_models.py").write_text(
        "import torch\n"
        "class Tiny(torch.nn.Module):\n"
        "    def __init__(self, in_channels, num_classes, input_size, hidden=5):\n"
        "        super().__init__()\n"
        "        self.seen = (in_channels, num_classes, tuple(input_size))\n"
        "        self.fc = torch.nn.Linear(in_channels * input_size[0] * input_size[1], num_classes)\n"
        "    def forward(self, x):\n"
        "        return self.fc(x.flatten(1))\n"
        "class Wrong(Tiny):\n"
        "    def forward(self, x):\n"
        "        return self.fc(x[:, :, :2].flatten(1))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    net = make({"_target_": "my_models.Tiny", "hidden": 3}, (3, 32, 32), classes=4)
    assert net.seen == (3, 4, (32, 32))
    wrong = make({"_target_": "my_models.Wrong"}, (1, 28, 28))
    with pytest.raises(ConfigError, match="forward pass on a 1x28x28 input failed"):
        check_forward(wrong, (1, 28, 28), 10)
    with pytest.raises(ConfigError, match="rejected its arguments"):
        make({"_target_": "my_models.Tiny", "nope": 1})
    sys.modules.pop("my_models", None)
