"""The sweep as TensorBoard runs in ``<sweep dir>/tensorboard/``: the plots as images, and one HPARAMS
session per finished trial whose columns are the searched keys alone (what tells the trials apart) and
whose metrics are the objective(s) and the cost. ``tensorboard --logdir outputs`` shows it beside the
trials' own runs. Rewritten whole at the end of every sweep command: it is derived from study.db."""

import shutil
from pathlib import Path

import optuna
from optuna.trial import TrialState


def write_tensorboard(study: optuna.Study, sweep_dir: Path, names: list[str], plots: list[Path]) -> Path:
    from torch.utils.tensorboard import SummaryWriter
    from torch.utils.tensorboard.summary import hparams

    root = sweep_dir / "tensorboard"
    shutil.rmtree(root, ignore_errors=True)
    if plots:  # drawn with matplotlib, which reads them back
        import matplotlib.image

        with SummaryWriter(str(root / "plots")) as writer:
            for path in plots:
                writer.add_image(f"sweep/{path.stem}", matplotlib.image.imread(path)[..., :3], 0, dataformats="HWC")
    for t in study.get_trials(deepcopy=False):
        if t.state not in (TrialState.COMPLETE, TrialState.PRUNED) or t.user_attrs.get("over_budget"):
            continue
        metrics = dict(zip(names, t.values)) if t.values else {}
        if t.state == TrialState.PRUNED and t.intermediate_values:
            metrics[f"{names[0]} (pruned, last epoch)"] = list(t.intermediate_values.values())[-1]
        cost = (t.user_attrs.get("cost") or {}).get("params")
        if cost is not None and "cost/params" not in metrics:
            metrics["cost/params"] = float(cost)
        params = {k: (v if isinstance(v, int | float | str | bool) else str(v)) for k, v in t.params.items()}
        params["state"] = t.state.name
        with SummaryWriter(str(root / f"trial_{t.number:03d}")) as writer:
            exp, ssi, sei = hparams(params, {k: 0.0 for k in metrics})
            for summary in (exp, ssi, sei):
                writer.file_writer.add_summary(summary)
            for key, value in metrics.items():
                writer.add_scalar(key, value, 0)
    return root
