"""A finished sweep's directory, as ``ensemble.from_sweep=DIR ensemble.top_k=K`` reads it: its best
trials' final checkpoints.

Read from the files every sweep writes into its directory (best.yaml for the objective and its
direction, trials.csv for the trials, each trial's summary.json for its final checkpoint), so it works
whatever storage the study was kept in and after the sweep directory is moved; no optuna."""

import csv
from pathlib import Path
from typing import Any

import yaml

from archfuse.checks import check_positive
from archfuse.errors import ConfigError
from archfuse.summary import FILE, read_summary

KEY = "ensemble.from_sweep"


def _objective(directory: Path) -> tuple[str, str]:
    """The first objective's name and direction (max or min); several objectives rank by the first."""
    best = directory / "best.yaml"
    if not (directory / "trials.csv").is_file() or not best.is_file():
        raise ConfigError(KEY, f"{directory} is not a sweep directory (it has no trials.csv and best.yaml); give "
                          "the directory of a sweep, outputs/sweeps/<study>, with at least one finished trial")
    try:
        objective = (yaml.safe_load(best.read_text()) or {}).get("objective") or {}
        name, direction = next(iter(objective.items()))
    except (yaml.YAMLError, AttributeError, StopIteration):
        raise ConfigError(KEY, f"{best} is damaged (no objective in it); run the sweep command again to "
                          "rewrite it") from None
    return str(name), str(direction)


def _checkpoint(directory: Path, row: dict[str, str]) -> Path:
    """The trial's final model (a recipe's result where it ran one), found beside its summary.json."""
    run_dir = directory / row["run_dir"]
    try:
        summary = read_summary(run_dir)
    except ConfigError:
        raise ConfigError(KEY, f"trial {row['number']}: {run_dir / FILE} is missing or damaged") from None
    written = summary.get("checkpoint")
    if not written:
        raise ConfigError(KEY, f"trial {row['number']} has no single model checkpoint (it ran cv.folds or seeds); "
                          "ensemble its folds' checkpoints with ensemble.checkpoints=[...] instead")
    path = run_dir / "checkpoints" / Path(written).name  # found where the sweep directory is now
    if not path.is_file():
        path = Path(written)
    if not path.is_file():
        raise ConfigError(KEY, f"trial {row['number']}: its checkpoint {written} is missing")
    return path


def top_checkpoints(sweep_dir: Any, top_k: Any) -> list[str]:
    """The final checkpoints of the ``top_k`` best completed trials, best first."""
    check_positive("ensemble.top_k", top_k, what="a positive integer (how many trials)")
    directory = Path(str(sweep_dir)).expanduser().resolve()
    name, direction = _objective(directory)
    with open(directory / "trials.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if r.get("state") == "COMPLETE" and r.get(name) not in (None, "")]
    done = list({r["run_dir"]: r for r in rows}.values())  # a repeat shares the run of the trial it repeats
    if len(done) < top_k:
        raise ConfigError("ensemble.top_k", f"is {top_k} but the sweep in {directory} has {len(done)} completed "
                          f"trials with their own run; lower ensemble.top_k or run more trials")
    done.sort(key=lambda r: float(r[name]), reverse=direction == "max")
    return [str(_checkpoint(directory, r)) for r in done[:top_k]]
