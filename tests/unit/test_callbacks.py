"""Checkpoint writing: best.ckpt holds weights only (ties go to the later epoch), last.ckpt the whole state
every N epochs and at the end."""

import pytest
import torch
from lightning.pytorch import LightningModule, Trainer
from omegaconf import OmegaConf
from torch.utils.data import DataLoader, TensorDataset

from archfuse.callbacks import BestCheckpoint
from archfuse.errors import ConfigError
from archfuse.trainer import build_trainer
from archfuse.validate import validate
from conftest import compose_train


def fit_recording_saves(tmp_path, overrides):
    config = OmegaConf.to_container(compose_train(["model=mlp", "model.hidden_sizes=[8]", "quiet=true",
                                                   "data.train_subset=128", "trainer.log_every_n_steps=1", *overrides],
                                                  tmp_path), resolve=True)
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


class ScriptedAccuracy(LightningModule):
    """Logs a given val/acc sequence, one value per epoch, so ties can be set up exactly."""

    def __init__(self, accuracies):
        super().__init__()
        self.layer, self.accuracies = torch.nn.Linear(2, 2), list(accuracies)

    def training_step(self, batch, batch_idx):
        return self.layer(batch[0]).sum()

    def validation_step(self, batch, batch_idx):
        self.log("val/acc", self.accuracies[self.current_epoch])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def best_epoch(tmp_path, ties, accuracies, mode="max"):
    data = DataLoader(TensorDataset(torch.randn(4, 2)), batch_size=2)
    folder = tmp_path / f"{ties}_{mode}_{len(accuracies)}"  # one per call: no earlier best.ckpt beside it
    checkpoint = BestCheckpoint(ties=ties, dirpath=str(folder), filename="best", monitor="val/acc",
                                mode=mode, save_top_k=1, save_weights_only=True)
    trainer = Trainer(max_epochs=len(accuracies), logger=False, enable_progress_bar=False, enable_model_summary=False,
                      num_sanity_val_steps=0, callbacks=[checkpoint])
    trainer.fit(ScriptedAccuracy(accuracies), train_dataloaders=data, val_dataloaders=data)
    return torch.load(checkpoint.best_model_path, weights_only=True)["epoch"], float(checkpoint.best_model_score)


def test_ties_go_to_the_later_epoch(tmp_path):
    accuracies = [0.5, 0.8, 0.8, 0.7, 0.8, 0.6]
    assert best_epoch(tmp_path, "later", accuracies) == (4, pytest.approx(0.8))
    assert best_epoch(tmp_path, "earlier", accuracies) == (1, pytest.approx(0.8))  # Lightning's own rule
    assert best_epoch(tmp_path, "later", [0.5, 0.9, 0.8]) == (1, pytest.approx(0.9))  # a worse epoch never wins
    assert best_epoch(tmp_path, "later", [0.3, 0.2, 0.2, 0.4], mode="min")[0] == 2


def test_unknown_tie_rule_names_the_key(tmp_path):
    config = OmegaConf.to_container(compose_train(["callbacks.model_checkpoint.ties=first"], tmp_path), resolve=True)
    with pytest.raises(ConfigError, match="callbacks.model_checkpoint.ties: must be later or earlier, got 'first'"):
        build_trainer(config, tmp_path / "run")
