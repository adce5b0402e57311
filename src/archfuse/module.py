"""The LightningModule every run trains: a classifier built from the composed config."""

from typing import Any

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from lightning.pytorch import LightningModule
from torch import Tensor, nn
from torchmetrics import MaxMetric, MeanMetric, SumMetric
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from archfuse.instantiate import build
from archfuse.models.build import build_model
from archfuse.randomness import epoch_seed, fit_epoch


def build_network(config: dict[str, Any], input_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """The ensemble strategy assembles member models; the recipe may reshape the result."""
    ensemble = build(config["ensemble"], "ensemble")
    recipe = build(config["recipe"], "recipe")
    c, h, w = input_shape
    net = ensemble.build(lambda: build_model(config["model"], c, num_classes, (h, w)))
    return recipe.prepare(net)


class ClassifierModule(LightningModule):
    """Cross-entropy classifier. ``config`` is the whole composed run config as plain data, saved in
    every checkpoint, so a checkpoint alone rebuilds the network and its data module."""

    def __init__(self, config: dict[str, Any], input_shape: tuple[int, int, int], num_classes: int):
        super().__init__()
        self.save_hyperparameters()
        self.input_shape, self.num_classes = tuple(input_shape), num_classes
        self.net = build_network(config, self.input_shape, num_classes)
        acc = lambda: MulticlassAccuracy(num_classes=num_classes, average="micro")  # noqa: E731
        self.train_acc, self.val_acc, self.test_acc = acc(), acc(), acc()
        self.val_loss, self.test_loss = MeanMetric(), MeanMetric()
        self.val_acc_best = MaxMetric()
        self.val_acc_best.persistent(True)  # kept in checkpoints, so a resumed run remembers its best
        self.test_samples = SumMetric()
        self.test_confmat = MulticlassConfusionMatrix(num_classes=num_classes)

    @property
    def config(self) -> dict[str, Any]:
        return self.hparams["config"]

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)

    # -- training ---------------------------------------------------------------------------
    def on_train_epoch_start(self) -> None:
        # Randomness (dropout) drawn from (seed, epoch, rank): a resumed run repeats an uninterrupted one.
        epoch = fit_epoch(self.trainer)
        torch.manual_seed(epoch_seed(self.config.get("seed") or 0, epoch, self.global_rank))

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        self.train_acc(logits, y)
        self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=len(y))
        self.log("train/acc", self.train_acc, on_step=False, on_epoch=True, batch_size=len(y))
        return loss

    # -- validation and test: metric states are summed over ranks, then computed ---------------
    def _evaluate(self, batch: tuple[Tensor, Tensor], loss_metric: MeanMetric, acc_metric) -> tuple[Tensor, Tensor]:
        x, y = batch
        logits = self(x)
        loss_metric.update(F.cross_entropy(logits, y), weight=len(y))
        acc_metric.update(logits, y)
        return logits, y

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        self._evaluate(batch, self.val_loss, self.val_acc)

    def on_validation_epoch_end(self) -> None:
        acc = self.val_acc.compute()
        if not self.trainer.sanity_checking:  # the sanity check sees a few batches only
            self.val_acc_best.update(acc)
        best = acc if self.trainer.sanity_checking else self.val_acc_best.compute()
        self.log_dict({"val/loss": self.val_loss.compute(), "val/acc": acc, "val/acc_best": best},
                      prog_bar=True, sync_dist=True)
        self.val_loss.reset()
        self.val_acc.reset()

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        logits, y = self._evaluate(batch, self.test_loss, self.test_acc)
        self.test_samples.update(len(y))
        self.test_confmat.update(logits, y)

    def on_test_epoch_end(self) -> None:
        self.log_dict({"test/loss": self.test_loss.compute(), "test/acc": self.test_acc.compute(),
                       "test/samples": self.test_samples.compute().float()}, sync_dist=True)
        self.confusion_matrix = self.test_confmat.compute().cpu()  # synced: every rank calls compute
        for metric in (self.test_loss, self.test_acc, self.test_samples, self.test_confmat):
            metric.reset()

    # -- optimisation -------------------------------------------------------------------------
    def configure_optimizers(self) -> Any:
        optimizer = instantiate(self.config["optimizer"])(params=self.parameters())
        if not self.config.get("scheduler"):
            return optimizer
        scheduler = instantiate(self.config["scheduler"])(optimizer=optimizer)
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "monitor": "val/loss", "interval": "epoch"}}
