"""The whole job of ``archfuse-train``: validate, fit once or per fold, write summary.json, print, and
return the objective to the sweeper."""

import shlex
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from archfuse.ddp import end_job, follow_parent
from archfuse.errors import ConfigError, RunInterrupted, RunPruned
from archfuse.objective import objective_record, objective_result
from archfuse.process import interruptible
from archfuse.report import print_summary
from archfuse.run.fit import fit_and_test
from archfuse.run.repeats import run_repeats
from archfuse.summary import FILE, interrupted_summary, pruned_summary, run_summary, write_summary
from archfuse.trainer import quiet_lightning
from archfuse.validate import validate

# Callbacks built in code for each fit of the job (argument: the fit's index, counting seeds then folds).
CallbacksFor = Callable[[int], list[Any]]


def discard_run_dir(run_dir: Path, output_dir: Path) -> None:
    """A run stopped by bad input leaves nothing behind that looks like a run, nor the folders above it
    (``outputs/runs``) where it made them and they are now empty."""
    if run_dir.is_dir() and not (run_dir / FILE).exists() and not (run_dir / "checkpoints").exists():
        shutil.rmtree(run_dir, ignore_errors=True)
        top = output_dir.absolute()
        for parent in run_dir.absolute().parents:
            if parent != top and top not in parent.parents:
                break
            try:
                parent.rmdir()  # only an empty folder goes; another run's folder stays
            except OSError:
                break


def run_job(config: dict[str, Any], choices: dict[str, str], is_rank_zero: bool = True,
            callbacks_for: CallbacksFor | None = None) -> float | list[float]:
    """The whole run. Returns its objective (config key ``objective``; the mean over folds under cv)."""
    follow_parent()
    run_dir = Path(config["paths"]["run_dir"])
    quiet_lightning(bool(config.get("quiet")))
    with interruptible():
        return _job(config, choices, run_dir, is_rank_zero, callbacks_for)


def _job(config: dict[str, Any], choices: dict[str, str], run_dir: Path, is_rank_zero: bool,
         callbacks_for: CallbacksFor | None) -> float | list[float]:
    try:
        sections = _fit_run(config, choices, run_dir, callbacks_for)
    except RunInterrupted as err:
        if is_rank_zero:  # what was kept, and how to go on from it
            write_summary(run_dir, interrupted_summary(config, choices, interruption(err, config, run_dir)))
        end_job(failed=True)
        raise
    except RunPruned as err:
        if is_rank_zero:  # a pruned trial keeps its directory and says why it ended early
            write_summary(run_dir, pruned_summary(config, choices, getattr(err, "metrics", {})))
        end_job(failed=True)
        raise
    except BaseException as err:
        # bad input, found before training (or, for sizes only known then, at data loading)
        if isinstance(err, ConfigError) and is_rank_zero:
            discard_run_dir(run_dir, Path(config["paths"]["output_dir"]))
        end_job(failed=True)  # this error is the one to report, not the other ranks' reaction to it
        raise
    end_job()
    if sections is None:  # a non-zero DDP rank: rank 0 reports
        return float("nan")
    result = objective_result(config, sections)  # a metric the run did not report fails before anything is written
    summary = run_summary(config, choices, sections, objective_record(config, sections))
    write_summary(run_dir, summary)
    print_summary(summary, run_dir)  # printed in quiet mode too: it is the run's one line of result
    if not config["keep_last_ckpt"]:
        discard_resume_checkpoints(run_dir)
    return result


def discard_resume_checkpoints(run_dir: Path) -> None:
    """A finished run needs no resume state: its last.ckpt files (the whole optimizer state, three times
    the weights under Adam) go; best.ckpt and final.ckpt stay. An interrupted or failed run keeps them."""
    for path in run_dir.rglob("checkpoints/last.ckpt"):
        path.unlink(missing_ok=True)


def interruption(err: RunInterrupted, config: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """What an interrupted run kept: the completed epochs in its last.ckpt, and the command that resumes.
    ``err`` gets the command too (``resume``), for the line the command line prints."""
    last, epochs = err.last_checkpoint, err.epochs_done
    if last is None and (run_dir / "checkpoints" / "last.ckpt").is_file():  # written before the signal came
        import torch

        last = str(run_dir / "checkpoints" / "last.ckpt")
        epochs = int(torch.load(last, map_location="cpu", weights_only=True, mmap=True)["epoch"]) + 1
    repeated = bool((config.get("cv") or {}).get("folds")) or (config.get("seeds") or 1) > 1
    err.resume = None if last is None or repeated else resume_command(last)
    err.last_checkpoint, err.epochs_done = last, epochs
    return {"signal": err.signal_name, "epochs_done": epochs, "last_checkpoint": last, "resume": err.resume}


def resume_command(last_ckpt: str) -> str:
    """The command line that continues this run from ``last_ckpt``: its own overrides, ckpt_path set."""
    from hydra.core.hydra_config import HydraConfig

    overrides = list(HydraConfig.get().overrides.task) if HydraConfig.initialized() else sys.argv[1:]
    kept = [o for o in overrides if o.lstrip("+~").split("=")[0] != "ckpt_path"]
    return shlex.join(["archfuse-train", *kept, f"ckpt_path={last_ckpt}"])


def _fit_run(config: dict[str, Any], choices: dict[str, str], run_dir: Path,
             callbacks_for: CallbacksFor | None) -> dict[str, Any] | None:
    """The summary's sections of the run's fits (None on a non-zero DDP rank)."""
    parts = validate(config)
    if (config.get("cv") or {}).get("folds") or (config.get("seeds") or 1) > 1:
        return run_repeats(config, run_dir, choices, callbacks_for)
    resume_from = None
    if parts.resume is not None:
        if parts.resume.get("optimizer_states"):
            resume_from = config["ckpt_path"]  # continue training: weights, optimizer, epoch, best so far
        else:  # a final model (after recipes) has no optimizer state: train on from its weights
            parts.module.load_state_dict(parts.resume["state_dict"])
    callbacks = callbacks_for(0) if callbacks_for else ()
    result = fit_and_test(config, parts, run_dir, choices, callbacks=callbacks, resume_from=resume_from)
    if not result.pop("is_global_zero"):
        return None
    return result
