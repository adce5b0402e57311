"""Pure pieces of reporting: flattened hyperparameters, the confusion-matrix picture, atomic JSON."""

import json

import torch

from archfuse.files import write_json_atomic
from archfuse.report import confusion_image, flatten, hparams_of


def test_flatten_gives_tensorboard_friendly_values():
    flat = flatten({"model": {"width": 8, "sizes": [1, 2], "name": None, "bn": True}})
    assert flat == {"model.width": 8, "model.sizes": "[1, 2]", "model.name": "None", "model.bn": True}


def test_hparams_hold_choices_and_model_data_optimizer_keys():
    config = {"model": {"width": 8}, "data": {"batch_size": 64}, "optimizer": {"lr": 0.01}, "seed": 3,
              "trainer": {"max_epochs": 2, "devices": 1}, "paths": {"run_dir": "/x"}}
    hp = hparams_of(config, {"model": "convnet", "trainer": "cpu", "paths": "default"})
    assert hp["model"] == "convnet" and hp["trainer"] == "cpu" and "paths" not in hp
    assert hp["model.width"] == 8 and hp["data.batch_size"] == 64 and hp["optimizer.lr"] == 0.01
    assert hp["seed"] == 3 and hp["trainer.max_epochs"] == 2 and "paths.run_dir" not in hp


def test_confusion_image_is_darker_where_the_share_is_larger():
    matrix = torch.tensor([[9, 1], [0, 10]])
    image = confusion_image(matrix, cell=10)
    assert image.shape == (3, 20, 20) and image.min() >= 0 and image.max() <= 1
    centre = lambda r, c: image[:, r * 10 + 5, c * 10 + 5]  # noqa: E731
    assert centre(1, 1).sum() < centre(0, 0).sum() < centre(0, 1).sum() < centre(1, 0).sum() + 1e-6
    assert torch.allclose(centre(1, 0), torch.ones(3))  # an empty cell is white


def test_write_json_atomic_leaves_no_temporary_files(tmp_path):
    path = tmp_path / "run" / "summary.json"
    write_json_atomic(path, {"status": "ok", "n": 1})
    write_json_atomic(path, {"status": "ok", "n": 2})
    assert json.loads(path.read_text()) == {"status": "ok", "n": 2}
    assert [p.name for p in path.parent.iterdir()] == ["summary.json"]


def test_hparams_leave_out_class_paths_a_group_choice_already_names():
    config = {"model": {"_target_": "archfuse.models.convnet.ConvNet", "width": 8},
              "optimizer": {"_target_": "torch.optim.SGD", "_partial_": True, "lr": 0.1}}
    hp = hparams_of(config, {"model": "convnet"})
    assert "model._target_" not in hp and "optimizer._partial_" not in hp
    assert hp["optimizer._target_"] == "torch.optim.SGD"  # no optimizer group: the class path is the choice
