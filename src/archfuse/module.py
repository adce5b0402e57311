"""The LightningModule every run trains. It receives built objects (network, criterion, optimizer and
scheduler factories, the recipe and ensemble strategy) and knows no config tree; the run config is
only carried along, so that every checkpoint can rebuild its network and data module."""

import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F
from lightning.pytorch import LightningModule
from torch import Tensor, nn
from torchmetrics import MaxMetric, MeanMetric, SumMetric
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from archfuse.checkpoint import RECORD_KEY
from archfuse.ensembles.base import Ensemble
from archfuse.ensembles.none import NoEnsemble
from archfuse.randomness import epoch_seed, fit_epoch
from archfuse.recipes.base import Recipe

# The metrics logged below that a callback (checkpoint, early stopping) can monitor; a recipe's loss terms
# and steps add train/ ones of their own.
MONITORABLE = ("val/acc", "val/acc_best", "val/loss", "train/acc", "train/loss")


class ClassifierModule(LightningModule):
    """Classifier trained with ``criterion`` (plus the recipe's loss terms); evaluated with plain
    cross-entropy, so val/loss and test/loss compare across criteria, and in full precision, whatever
    precision it trains in."""

    def __init__(self, net: nn.Module, criterion: nn.Module, optimizer: Callable[..., torch.optim.Optimizer],
                 scheduler: Callable[..., Any] | None = None, recipe: Recipe | None = None,
                 ensemble: Ensemble | None = None, member_records: list | None = None, *,
                 input_shape: tuple[int, ...], num_classes: int, seed: int, fit_epochs: int,
                 config: dict[str, Any] | None = None):
        super().__init__()
        self.save_hyperparameters({"config": config or {}, "input_shape": tuple(input_shape),
                                   "num_classes": num_classes})
        self.net, self.criterion = net, criterion
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.recipe = recipe or Recipe()
        self.ensemble = ensemble or NoEnsemble()
        self.member_records = member_records or [None]
        self.input_shape, self.num_classes, self.seed = tuple(input_shape), num_classes, seed
        self.fit_epochs = fit_epochs  # epochs of the run's fit, for a schedule built before its Trainer exists
        # The data spec (TensorDataModule.data_spec: input shape, classes, mean and std, channels, image size),
        # recorded in every checkpoint; set by the run once its data is loaded, or read from a checkpoint.
        self.data_spec: dict[str, Any] | None = None
        self._lr_override: float | None = None  # a recipe's fine-tune may train at another learning rate
        acc = lambda: MulticlassAccuracy(num_classes=num_classes, average="micro")  # noqa: E731
        self.val_acc, self.test_acc = acc(), acc()
        # Counted at every training step from the network's own logits and the batch's labels (which the loss
        # has used already, so no argument checks), logged once per epoch: per step it is all overhead.
        self.train_acc = MulticlassAccuracy(num_classes=num_classes, average="micro", validate_args=False)
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

    def structure_record(self) -> dict[str, Any]:
        """What rebuilds this network's structure: saved members' records and the recipes' states; and what
        its inputs look like (the data spec), when known."""
        record = {"members": self.member_records, "recipes": self.recipe.state(self.net)}
        if self.data_spec is not None:
            record["data"] = self.data_spec
        return record

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[RECORD_KEY] = self.structure_record()

    # -- training ---------------------------------------------------------------------------
    def on_train_epoch_start(self) -> None:
        # Randomness (dropout) drawn from (seed, epoch, rank): a resumed run repeats an uninterrupted one.
        torch.manual_seed(epoch_seed(self.seed, fit_epoch(self.trainer), self.global_rank))

    def training_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> Tensor:
        y = batch[1]
        base, logits = self.ensemble.training_loss(self.net, batch, self.criterion)
        loss, terms = self.recipe.total_loss(base, logits, batch, self.net)
        self.train_acc.update(logits.detach(), y)
        self.log("train/loss", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=len(y))
        for name, term in terms.items():
            self.log(f"train/loss_{name}", term, on_step=False, on_epoch=True, batch_size=len(y))
        return loss

    def on_train_epoch_end(self) -> None:
        # The epoch's training accuracy (summed over the ranks by compute); Lightning runs this hook before the
        # monitoring callbacks' (checkpoint, early stopping), so they see it as they saw the per-step log.
        if self.train_acc.update_called:
            self.log("train/acc", self.train_acc.compute())
        self.train_acc.reset()

    # -- validation and test: metric states are summed over ranks, then computed ---------------
    def _evaluate(self, batch: tuple[Tensor, ...], loss_metric: MeanMetric, acc_metric) -> tuple[Tensor, Tensor]:
        x, y = batch[0], batch[1]
        # Mixed precision speeds up training only: every evaluation (validation, test, archfuse-eval, a recipe
        # step's before/after, cost) runs the model in full precision, so their figures agree.
        with torch.autocast(x.device.type, enabled=False):
            logits = self(x)
        loss_metric.update(F.cross_entropy(logits, y), weight=len(y))
        acc_metric.update(logits, y)
        return logits, y

    def validation_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> None:
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

    def test_step(self, batch: tuple[Tensor, ...], batch_idx: int) -> None:
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
    def make_optimizer(self) -> torch.optim.Optimizer:
        optimizer = self.optimizer_factory(params=[p for p in self.parameters() if p.requires_grad])
        if self._lr_override is not None:
            for group in optimizer.param_groups:
                group["lr"] = self._lr_override
        return optimizer

    @contextmanager
    def learning_rate(self, lr: float | None) -> Iterator[None]:
        """Fits inside train at ``lr`` (a recipe step's fine-tune); None keeps the optimizer's own rate."""
        self._lr_override = lr
        try:
            yield
        finally:
            self._lr_override = None

    def make_scheduler(self, optimizer: torch.optim.Optimizer) -> Any:
        """The scheduler; one that takes ``fit_epochs`` (archfuse.scheduler) gets the length of the fit it
        runs in: the attached Trainer's epochs (a recipe step's fine-tune), else the run's."""
        if self.scheduler_factory is None:
            return None
        extra = {}
        if "fit_epochs" in inspect.signature(self.scheduler_factory).parameters:
            trainer = self._trainer
            extra["fit_epochs"] = trainer.max_epochs if trainer is not None else self.fit_epochs
        return self.scheduler_factory(optimizer=optimizer, **extra)

    def keep_optimizers(self, optimizer: torch.optim.Optimizer, scheduler: Any) -> None:
        """Optimizer and scheduler built early (validation builds them, so bad values fail before any data
        loads) for the next fit to use: the run builds them once."""
        self._kept_optimizers = (optimizer, scheduler)

    def configure_optimizers(self) -> Any:
        kept, self._kept_optimizers = getattr(self, "_kept_optimizers", None), None
        if kept is None:
            optimizer = self.make_optimizer()
            kept = (optimizer, self.make_scheduler(optimizer))
        optimizer, scheduler = kept
        if scheduler is None:
            return optimizer
        return {"optimizer": optimizer,
                "lr_scheduler": {"scheduler": scheduler, "monitor": "val/loss", "interval": "epoch"}}
