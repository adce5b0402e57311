"""Runs as archfuse-compare sees them: every summary.json under the given paths, flattened."""

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archfuse.errors import ConfigError
from archfuse.report import flatten
from archfuse.summary import COST, FILE, read_summary

# Config keys that say where or how loudly a run ran, not what it computed.
IGNORED = ("paths.", "ckpt_path", "print_config", "quiet", "trainer.enable_progress_bar", "objective")


@dataclass
class Run:
    """One run directory: its config (flat, with the group choices under their group's name), its
    metrics and cost (``cost/params``, ...), the standard deviations it recorded over seeds, and n,
    the number of seeds behind its figures."""

    path: Path
    name: str
    config: dict[str, Any]
    metrics: dict[str, float]
    std: dict[str, float] = field(default_factory=dict)
    n: int = 1
    status: str = "ok"

    def value(self, key: str) -> Any:
        if key == "status":
            return self.status
        if key == "n":
            return self.n
        return self.metrics[key] if key in self.metrics else self.config.get(key)


def _config_of(summary: dict[str, Any]) -> dict[str, Any]:
    choices = {k: v for k, v in (summary.get("choices") or {}).items()
               if k not in ("paths", "logger", "callbacks") and not k.startswith("hydra")}
    flat = flatten(summary.get("config") or {})
    # GROUP._target_ stays: a user's own class under a chosen name (model=seed000 model._target_=my.Net) must
    # show; differing_keys drops it where the choice alone tells it.
    flat = {k: v for k, v in flat.items() if not k.startswith(IGNORED) and not k.endswith("._partial_")}
    return {**choices, **flat}


def _metrics_of(summary: dict[str, Any]) -> tuple[dict[str, float], dict[str, float]]:
    metrics, std = {}, {}
    for key, value in (summary.get("metrics") or {}).items():
        if not isinstance(value, int | float) or isinstance(value, bool) or key == "test/samples":
            continue
        if key.endswith("_std"):
            std[key.removesuffix("_std")] = float(value)
        else:
            metrics[key] = float(value)
    for key, value in (summary.get("cost") or {}).items():
        if isinstance(value, int | float) and key != "latency_batch_size":
            metrics[f"{COST}{key}"] = float(value)
    return metrics, std


def _is_run(summary_file: Path) -> bool:
    """A run's summary.json (not some other file of that name): it holds the run's config."""
    try:
        return "config" in read_summary(summary_file)
    except ConfigError:
        return False


def read_run(path: Path, base: Path) -> Run:
    summary = read_summary(path)
    metrics, std = _metrics_of(summary)
    try:
        name = path.relative_to(base).as_posix()
    except ValueError:
        name = path.as_posix()
    n = len((summary.get("seeds") or {}).get("runs") or []) or 1
    return Run(path=path, name=name if name != "." else path.name, config=_config_of(summary),
               metrics=metrics, std=std, n=n, status=str(summary.get("status", "ok")))


def load_runs(paths: list[str | Path]) -> list[Run]:
    """Every run under ``paths`` (a run directory, a multirun or sweep directory, outputs/), in path
    order; names are relative to the folder the paths have in common (a run directory's: its parent)."""
    found: list[Path] = []
    roots: list[Path] = []
    for given in paths:
        path = Path(given)
        if not path.exists():
            raise ConfigError(str(given), "no such file or directory; give run directories, multirun or sweep "
                                          "directories, or outputs/")
        if path.is_file():
            path = path.parent if path.name == FILE else path
        runs = sorted({p.parent for p in path.rglob(FILE) if _is_run(p)} if path.is_dir() else set())
        if not runs:
            raise ConfigError(str(given), "holds no runs (no summary.json below it); a run writes one when it "
                                          "finishes")
        found += [r for r in runs if r not in found]
        roots.append((path.parent if (path / FILE).is_file() else path).resolve())
    resolved = [p.resolve() for p in found]
    base = _common_parent(roots)  # names start below the folders given
    runs = [read_run(p, base) for p in resolved]
    short = [short_name(r.name) for r in runs]
    counts = Counter(short)
    for run, name in zip(runs, short):
        run.name = name if counts[name] == 1 else run.name
    return runs


_NAMED = re.compile(r"^(\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d|\d+)_.+$")


def short_name(name: str) -> str:
    """A run's name without the overrides its directory is named after (the table shows them as
    columns): ``multiruns/2026-12-02_07-01-25/0_model.width-8`` -> ``multiruns/2026-12-02_07-01-25/0``."""
    return "/".join(_NAMED.sub(r"\1", part) for part in name.split("/"))


def _common_parent(paths: list[Path]) -> Path:
    common = paths[0]
    while any(common not in p.parents and common != p for p in paths):
        common = common.parent
    return common
