"""Checkpoint writing: best.ckpt holds weights only, last.ckpt the whole state every N epochs and at the end."""

import pytest
import torch
from omegaconf import OmegaConf

from archfuse.errors import ConfigError
from archfuse.trainer import build_trainer
from archfuse.validate import validate
from conftest import compose_train


def fit_recording_saves(tmp_path, overrides):
    config = OmegaConf.to_container(compose_train(["model=mlp", "model.hidden_sizes=[8]", "quiet=true",
                                                   "data.train_subset=128", *overrides], tmp_path), resolve=True)
    parts = validate(config)
    trainer = build_trainer(config, tmp_path / "run", quiet=True)
    saves = []
    original = trainer.save_checkpoint

    def recording(path, *args, **kwargs):
        saves.append((path.rsplit("/", 1)[-1], trainer.current_epoch))
        return original(path, *args, **kwargs)

    trainer.save_checkpoint = recording
    trainer.fit(parts.module, datamodule=parts.datamodule)
    return saves, tmp_path / "run" / "checkpoints"


def test_last_checkpoint_every_n_epochs_and_at_the_end(tmp_path):
    saves, folder = fit_recording_saves(tmp_path, ["trainer.max_epochs=5", "callbacks.resume_checkpoint.every_n_epochs=2",
                                                  "callbacks.resume_checkpoint.every_seconds=0"])
    assert [epoch for name, epoch in saves if name == "last.ckpt"] == [1, 3, 5]  # after epochs 2 and 4, and the end
    last = torch.load(folder / "last.ckpt", map_location="cpu", weights_only=True)
    best = torch.load(folder / "best.ckpt", map_location="cpu", weights_only=True)
    assert last["optimizer_states"] and last["epoch"] == 5  # the whole training state after the 5 epochs
    assert "optimizer_states" not in best and "archfuse" in best  # weights and structure record only


def test_every_epoch_writes_no_extra_copy_at_the_end(tmp_path):
    saves, _ = fit_recording_saves(tmp_path, ["trainer.max_epochs=2", "callbacks.resume_checkpoint.every_seconds=0"])
    assert [epoch for name, epoch in saves if name == "last.ckpt"] == [0, 1]


def test_short_epochs_write_once_a_minute_and_at_the_end(tmp_path):
    saves, _ = fit_recording_saves(tmp_path, ["trainer.max_epochs=3"])  # seconds, not minutes
    assert [epoch for name, epoch in saves if name == "last.ckpt"] == [3]


def test_bad_interval_names_the_key(tmp_path):
    config = OmegaConf.to_container(compose_train(["callbacks.resume_checkpoint.every_n_epochs=0"], tmp_path),
                                    resolve=True)
    with pytest.raises(ConfigError, match="callbacks.resume_checkpoint.every_n_epochs: must be a positive integer"):
        build_trainer(config, tmp_path / "run")
    config["callbacks"]["resume_checkpoint"].update(every_n_epochs=1, every_seconds=-1)
    with pytest.raises(ConfigError, match="callbacks.resume_checkpoint.every_seconds: must be a number of seconds"):
        build_trainer(config, tmp_path / "run")
