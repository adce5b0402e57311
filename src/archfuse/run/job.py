"""The whole job of ``archfuse-train``: validate, fit once or per fold, write summary.json, print, and
return the objective to the sweeper."""

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from archfuse.ddp import end_job, follow_parent
from archfuse.errors import ConfigError, RunPruned
from archfuse.objective import objective_record, objective_result
from archfuse.report import print_summary
from archfuse.run.repeats import run_repeats
from archfuse.run.fit import fit_and_test
from archfuse.summary import FILE, pruned_summary, run_summary, write_summary
from archfuse.trainer import quiet_lightning
from archfuse.validate import validate

# Callbacks built in code for each fit of the job (argument: the fit's index, counting seeds then folds).
CallbacksFor = Callable[[int], list[Any]]


def discard_run_dir(run_dir: Path) -> None:
    """A run stopped by bad input leaves nothing behind that looks like a run."""
    if run_dir.is_dir() and not (run_dir / FILE).exists() and not (run_dir / "checkpoints").exists():
        shutil.rmtree(run_dir, ignore_errors=True)


def run_job(config: dict[str, Any], choices: dict[str, str], is_rank_zero: bool = True,
            callbacks_for: CallbacksFor | None = None) -> float | list[float]:
    """The whole run. Returns its objective (config key ``objective``; the mean over folds under cv)."""
    follow_parent()
    run_dir = Path(config["paths"]["run_dir"])
    quiet_lightning(bool(config.get("quiet")))
    try:
        sections = _fit_run(config, choices, run_dir, callbacks_for)
    except RunPruned as err:
        if is_rank_zero:  # a pruned trial keeps its directory and says why it ended early
            write_summary(run_dir, pruned_summary(config, choices, getattr(err, "metrics", {})))
        end_job(failed=True)
        raise
    except BaseException as err:
        # bad input, found before training (or, for sizes only known then, at data loading)
        if isinstance(err, ConfigError) and is_rank_zero:
            discard_run_dir(run_dir)
        end_job(failed=True)  # this error is the one to report, not the other ranks' reaction to it
        raise
    end_job()
    if sections is None:  # a non-zero DDP rank: rank 0 reports
        return float("nan")
    result = objective_result(config, sections)  # a metric the run did not report fails before anything is written
    summary = run_summary(config, choices, sections, objective_record(config, sections))
    write_summary(run_dir, summary)
    print_summary(summary, run_dir)  # printed in quiet mode too: it is the run's one line of result
    return result


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
