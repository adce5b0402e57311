"""The job's side of a sweep trial: which trial the run is (``ARCHFUSE_SWEEP_TRIAL``, set by the sweeper
through ``hydra.job.env_set``, so it reaches the run in-process, in a joblib worker or as a cluster job),
and the callback that reports the objective's metric after every validation and stops a pruned run.

Under DDP every rank has the callback; rank 0 alone talks to the study and broadcasts its verdict.
Under cv.folds and seeds each fit reports at its own steps (fit index * max_epochs + epoch), so the
pruner compares a fold's epoch with the same fold's epoch of other trials."""

from typing import Any

from lightning.pytorch import Callback, Trainer

from archfuse.errors import RunPruned
from archfuse.sweep.trial_env import trial_spec


class TrialReport(Callback):
    """Reports ``monitor`` to the trial after each validation; raises RunPruned when the pruner says so."""

    def __init__(self, spec: dict[str, Any], fit_index: int, epochs: int):
        self.spec, self.offset = spec, fit_index * max(1, epochs)
        self._trial = None

    def _open(self):
        if self._trial is None:
            import optuna

            from archfuse.sweep.algorithms import build_pruner

            optuna.logging.set_verbosity(optuna.logging.WARNING)
            study = optuna.load_study(study_name=self.spec["study"], storage=self.spec["storage"],
                                      pruner=build_pruner(self.spec["pruner"], self.spec.get("pruner_args") or {}))
            self._trial = optuna.trial.Trial(study, self.spec["trial_id"])
        return self._trial

    @staticmethod
    def _params(pl_module: Any) -> int:
        from archfuse.cost import count_params

        return count_params(pl_module.net)

    def on_validation_end(self, trainer: Trainer, pl_module: Any) -> None:
        if trainer.sanity_checking:
            return
        prune = False
        value = trainer.callback_metrics.get(self.spec["monitor"])
        if trainer.is_global_zero and value is not None:
            trial = self._open()
            value = float(value) + self.spec.get("params_penalty", 0.0) * self._params(pl_module)
            trial.report(value, self.offset + trainer.current_epoch)
            prune = trial.should_prune()
        if trainer.world_size > 1:
            prune = trainer.strategy.broadcast(prune, src=0)
        if prune:
            err = RunPruned(f"trial {self.spec['number']} pruned at epoch {trainer.current_epoch} "
                            f"(reported {self.spec['monitor']}: {float(value) if value is not None else float('nan'):.4f})")
            err.metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith(("val/", "train/"))}
            err.metrics["epoch"] = trainer.current_epoch
            raise err


def trial_callbacks(config: dict[str, Any]):
    """``callbacks_for`` of archfuse.run.job for a sweep trial that may be pruned; None otherwise."""
    spec = trial_spec()
    if not spec or spec.get("pruner", "none") == "none":
        return None
    epochs = int(config["trainer"].get("max_epochs") or 1)
    return lambda index: [TrialReport(spec, index, epochs)]
