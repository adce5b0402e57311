"""A summary as the run's writers build it and its readers load it: the sections of one fit, of
repeated fits, of a finished or a pruned run; summary.json written atomically and read back."""

import json
import platform
from pathlib import Path
from typing import Any

from archfuse.errors import ConfigError
from archfuse.files import write_json_atomic
from archfuse.host import cpu_features
from archfuse.summary.sections import SECTIONS, VERSION

FILE = "summary.json"
_PACKAGES = ("archfuse", "torch", "torchvision", "lightning", "torchmetrics", "hydra-core")


def versions() -> dict[str, str]:
    """The versions section: Python's and those of the packages a run depends on."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for pkg in _PACKAGES:
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def training_record(precision: str, epochs: int, seconds: float, fits: int | None = None) -> dict[str, Any]:
    """How the run trained; ``fits`` over seeds or folds (``seconds`` then counts them all). The CPU's
    features stand beside the precision: what ``precision: auto`` chose, and how fast, depends on them."""
    out = {"precision": precision, "cpu_features": list(cpu_features()), "epochs": epochs,
           "seconds": round(seconds, 2)}
    return out if fits is None else {**out, "fits": fits}


def _sections(given: dict[str, Any]) -> dict[str, Any]:
    unknown = set(given) - set(SECTIONS)
    if unknown:
        raise KeyError(f"summary.json has no section {sorted(unknown)}; its sections: {list(SECTIONS)}")
    return {name: given[name] for name in SECTIONS if name in given}


def fit_sections(*, metrics: dict[str, float], training: dict[str, Any], recipe: list[dict[str, Any]],
                 checkpoint: str | None, best_checkpoint: str | None, cost: dict[str, Any] | None = None,
                 ensemble: dict[str, Any] | None = None, confusion_matrix: list[list[int]] | None = None,
                 data: dict[str, Any] | None = None) -> dict[str, Any]:
    """What one fit reports. ``cost`` and ``confusion_matrix`` come from rank 0 alone, ``ensemble`` from a
    run with an ensemble strategy that fits, ``data`` (the data spec) from a run whose data is loaded; the
    checkpoints are there even when None."""
    optional = {"cost": cost, "ensemble": ensemble, "confusion_matrix": confusion_matrix, "data": data}
    return _sections({"metrics": metrics, "training": training, "recipe": recipe, "checkpoint": checkpoint,
                      "best_checkpoint": best_checkpoint, **{k: v for k, v in optional.items() if v is not None}})


def repeats_sections(*, metrics: dict[str, float], training: dict[str, Any], cost: dict[str, Any],
                     recipe: list[dict[str, Any]], ensemble: dict[str, Any] | None = None,
                     cv: dict[str, Any] | None = None, seeds: dict[str, Any] | None = None,
                     data: dict[str, Any] | None = None) -> dict[str, Any]:
    """What repeated fits report (over seeds, folds or both): no single checkpoint, each seed's under seeds;
    the data spec is the same for every fit (the statistics are the training pool's, whatever the fold)."""
    optional = {"ensemble": ensemble, "cv": cv, "seeds": seeds, "data": data}
    return _sections({"metrics": metrics, "training": training, "cost": cost, "recipe": recipe,
                      **{k: v for k, v in optional.items() if v is not None}})


def cv_section(folds: list[dict[str, Any]], mean: dict[str, float], std: dict[str, float]) -> dict[str, Any]:
    """Cross-validation: each fold's metrics, and their mean and population std."""
    return {"folds": folds, "mean": mean, "std": std}


def seeds_section(runs: list[dict[str, Any]], mean: dict[str, float], std: dict[str, float]) -> dict[str, Any]:
    """Repeats over seeds: each seed's metrics and checkpoint, and their mean and sample std."""
    return {"runs": runs, "mean": mean, "std": std}


def run_summary(config: dict[str, Any], choices: dict[str, str], sections: dict[str, Any],
                objective: dict[str, list]) -> dict[str, Any]:
    """The summary of a finished run: its config and choices, what its fits reported, its objective."""
    return _sections({"version": VERSION, "config": config, "choices": choices, **sections,
                      "versions": versions(), "status": "ok", "objective": objective})


def pruned_summary(config: dict[str, Any], choices: dict[str, str], metrics: dict[str, float]) -> dict[str, Any]:
    """The summary of a sweep trial its pruner stopped: what it had logged when it stopped."""
    return {"version": VERSION, "config": config, "choices": choices, "status": "pruned", "metrics": metrics,
            "versions": versions()}


def interrupted_summary(config: dict[str, Any], choices: dict[str, str], interruption: dict[str, Any]) -> dict[str, Any]:
    """The summary of a run SIGINT or SIGTERM stopped: what it kept and how to continue it."""
    return {"version": VERSION, "config": config, "choices": choices, "status": "interrupted", "metrics": {},
            "interruption": interruption, "versions": versions()}


def summary_file(path: str | Path) -> Path:
    """A run directory's summary.json (``path`` may name the file itself)."""
    path = Path(path)
    return path if path.name == FILE and not path.is_dir() else path / FILE


def write_summary(run_dir: str | Path, summary: dict[str, Any]) -> None:
    """Readers never see half a summary."""
    write_json_atomic(summary_file(run_dir), summary)


def read_summary(path: str | Path) -> dict[str, Any]:
    """The summary of a run directory (or of the summary.json named); ConfigError naming the file when it
    is missing, not a JSON object, or of a later layout than this archfuse reads."""
    file = summary_file(path)
    try:
        summary = json.loads(file.read_text())
    except OSError as err:
        raise ConfigError(str(file), f"cannot be read ({err.strerror or err}); a run writes it when it "
                          "finishes") from None
    except ValueError as err:
        raise ConfigError(str(file), f"is damaged (not JSON: {err})") from None
    if not isinstance(summary, dict):
        raise ConfigError(str(file), f"is damaged (a JSON {type(summary).__name__}, not an object)")
    if summary.get("version", VERSION) != VERSION:
        raise ConfigError(str(file), f"has layout version {summary['version']!r}; this archfuse reads version "
                          f"{VERSION}: read it with the archfuse that wrote it")
    return summary
