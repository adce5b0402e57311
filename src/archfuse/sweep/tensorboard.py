"""The sweep's plots as a TensorBoard run, ``<sweep dir>/tensorboard/plots``, beside the trials' own runs
(``tensorboard --logdir outputs``). Each trial is in the HPARAMS tab once, as its own run: a finished trial
logs its row at its end, a pruned one when it is stopped (``status: pruned``). Rewritten whole at the end
of every sweep command: it is derived from study.db."""

import shutil
from pathlib import Path

import optuna


def write_tensorboard(study: optuna.Study, sweep_dir: Path, names: list[str], plots: list[Path]) -> Path:
    """The plots (drawn with matplotlib, which reads them back) as images of one TensorBoard run."""
    from torch.utils.tensorboard import SummaryWriter

    root = sweep_dir / "tensorboard"
    shutil.rmtree(root, ignore_errors=True)
    if plots:
        import matplotlib.image

        with SummaryWriter(str(root / "plots")) as writer:
            for path in plots:
                writer.add_image(f"sweep/{path.stem}", matplotlib.image.imread(path)[..., :3], 0, dataformats="HWC")
    return root
