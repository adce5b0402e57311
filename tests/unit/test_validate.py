"""Each bad value is caught by validate(), before data loading, with its key and the allowed values."""

import pytest
from omegaconf import OmegaConf

from archfuse.errors import ConfigError
from archfuse.validate import validate
from conftest import compose_train

CASES = [
    (["model=convnet", "model.width=-3"], "model.width: must be a positive int, got -3"),
    (["model=convnet", "model.activation=swish9"],
     "model.activation: unknown activation 'swish9'; choose one of relu, tanh, sigmoid, gelu, silu, leaky_relu, elu"),
    (["model=convnet", "model.depth=6"], "model.depth: depth 6 is too deep for 28x28 inputs"),
    (["data.val_fraction=0.5", "data.test_fraction=0.6"], "data.val_fraction: val_fraction (0.5) + test_fraction (0.6)"),
    (["data.val_fraction=1.5"], "data.val_fraction: must be between 0 and 1"),
    (["model._target_=nowhere.Net"], "model._target_: cannot import 'nowhere.Net'"),
    (["ensemble._target_=nowhere.Ens"], "ensemble._target_: cannot import 'nowhere.Ens'"),
    (["data=mnist", "data.root=/nonexistent/data"], "or add data.download=true"),
    (["data=cifar10", "data.root=/nonexistent/data"], "/nonexistent/data/cifar-10-batches-py/data_batch_1 is missing"),
    (["model=convnet", "model.width=abc"], "model.width: Value 'abc' of type 'str' could not be converted"),
    (["+model.widht=3"], "model.widht: unknown key; model accepts:"),
    (["+trainer.max_epoch=3"], "trainer.max_epoch: unknown key; trainer accepts:"),
    (["data.batch_size=0"], "data.batch_size: must be a positive integer, got 0"),
    (["optimizer.lr=-1"], "optimizer: torch.optim.Adam rejected its arguments: Invalid learning rate: -1"),
    (["optimizer._target_=torch.optim.Nope"], "optimizer._target_: cannot import 'torch.optim.Nope'"),
    (["cv.folds=1"], "cv.folds: must be 0 (no cross-validation) or at least 2"),
    (["cv.folds=3", "ckpt_path=/x.ckpt"], "ckpt_path: resuming is not supported together with cv.folds"),
    (["trainer.max_epochs=0"], "trainer.max_epochs: must be a positive integer"),
    (["cost.repeats=0"], "cost.repeats: must be a positive integer"),
    (["cost.max_seconds=0"], "cost.max_seconds: must be a number of seconds > 0, or null, got 0"),
    (["data.image_size=8", "model=seed001"], "model: seed001 needs inputs of at least 16x16"),
    (["+model.nonsense=1"], "model.nonsense: unknown key; model accepts: no options (Seed000 has none to set)"),
    (["+cv.foo=1"], "cv.foo: unknown key; cv accepts: folds"),
    (["seeds=0"], "seeds: must be a positive integer, got 0"),
    (["seeds=2", "ckpt_path=/x.ckpt"], "seeds: repeats over seeds start from scratch"),
    (["cv.folds=1000"], "cv.folds: 1000 folds need at least 1000 images of every class, but the smallest class"),
    (["objective=test/acc"], "objective: test/acc is measured on the test split"),
    (["objective=nonsense"], "objective: unknown metric 'nonsense'"),
    (["objective_direction=up"], "objective_direction: must be max or min"),
    (["recipe._target_=archfuse.recipes.chain.RecipeChain", "+recipe.x._target_=torch.nn.Identity"],
     "recipe.x: builds a Identity, not an archfuse.recipes.base.Recipe"),
    (["ensemble._target_=torch.nn.Identity"], "ensemble._target_: torch.nn.Identity is not an"),
    (["data.augment=flip"], "data.augment: unknown augmentation 'flip'; choose one of none, shift, affine"),
    (["data.rotation=270"], "data.rotation: must be a number >= 0, degrees, at most 180; got 270"),
    (["data.shift=0.6"], "data.shift: must be a number >= 0, of the image side, below half the image; got 0.6"),
    (["data.scale=-0.1"], "data.scale: must be a number >= 0"),
    (["scheduler.warmup_epochs=-2"], "scheduler.warmup_epochs: must be an integer >= 0, got -2"),
    (["trainer.precision=bf17"], "trainer"),
    (["callbacks.model_checkpoint.ties=first"], "callbacks.model_checkpoint.ties: must be later or earlier"),
]


@pytest.mark.parametrize("overrides, message", CASES, ids=[" ".join(c[0]) for c in CASES])
def test_validate_names_the_key(tmp_path, overrides, message):
    config = OmegaConf.to_container(compose_train(overrides, tmp_path), resolve=True)
    with pytest.raises(ConfigError) as err:
        validate(config)
    assert message in str(err.value)


def test_a_good_config_validates_without_loading_data(tmp_path):
    config = OmegaConf.to_container(compose_train(["model=convnet", "model.width=4"], tmp_path), resolve=True)
    parts = validate(config)
    assert parts.datamodule._split is None  # nothing loaded yet
    assert parts.module.net.features[0].out_channels == 4


@pytest.mark.parametrize("trainer, visible, message", [
    ({"accelerator": "gpu", "devices": 1}, 0, "trainer.accelerator: gpu asked for, but no CUDA GPU is visible"),
    ({"accelerator": "cuda", "devices": 1}, 0, "trainer.accelerator: cuda asked for, but no CUDA GPU is visible"),
    ({"accelerator": "gpu", "devices": 4, "strategy": "ddp"}, 2,
     "trainer.devices: 4 asks for more GPUs than the 2 visible; set trainer.devices=2 (or fewer)"),
    ({"accelerator": "gpu", "devices": [0, 3]}, 2, "trainer.devices: [0, 3] asks for more GPUs than the 2 visible"),
])
def test_gpus_asked_for_must_be_visible(trainer, visible, message):
    from archfuse.validate import check_gpus

    with pytest.raises(ConfigError) as err:
        check_gpus(trainer, visible)
    assert str(err.value).startswith(message)


@pytest.mark.parametrize("trainer, visible", [
    ({"accelerator": "cpu", "devices": 2}, 0), ({"accelerator": "auto", "devices": 1}, 0),
    ({"accelerator": "gpu", "devices": 2}, 2), ({"accelerator": "gpu", "devices": -1}, 1),
    ({"accelerator": "gpu", "devices": "auto"}, 1), ({"accelerator": "gpu", "devices": [1]}, 2),
])
def test_gpus_that_are_there_pass(trainer, visible):
    from archfuse.validate import check_gpus

    check_gpus(trainer, visible)
