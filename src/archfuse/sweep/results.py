"""What a sweep leaves in its directory besides study.db: trials.csv (one row per trial), best.yaml
(the best trial's overrides, or the Pareto front), PNG plots, and the printed table of top trials."""

import csv
import io
import warnings
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from archfuse.files import write_atomic
from archfuse.sweep.storage import INTERRUPTED

TOP = 5
REPEAT_OF = "repeat_of"  # user attr of a trial that reused a completed trial's result: that trial's number


def _shown(study: optuna.Study) -> list[FrozenTrial]:
    """The trials a person looks at: everything asked and run (not waiting, not skipped over budget)."""
    return [t for t in study.get_trials(deepcopy=False)
            if t.state != TrialState.WAITING and not t.user_attrs.get("over_budget")]


def _param_names(trials: list[FrozenTrial]) -> list[str]:
    names: list[str] = []
    for t in trials:
        names += [k for k in t.params if k not in names]
    return names


def write_csv(study: optuna.Study, sweep_dir: Path, objective: list[str]) -> Path:
    trials = _shown(study)
    params = _param_names(trials)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    retried = {t.system_attrs.get("failed_trial"): t.number for t in study.get_trials(deepcopy=False)
               if t.system_attrs.get("failed_trial") is not None}
    writer.writerow(["number", "state", *params, *objective, "cost/params", "cost/macs", "duration_s", "run_dir",
                     "error"])
    for t in trials:
        values = t.values if t.values is not None else [None] * len(objective)
        cost = t.user_attrs.get("cost") or {}
        duration = round(t.duration.total_seconds(), 2) if t.duration else None
        writer.writerow([t.number, t.state.name, *[t.params.get(p) for p in params], *values, cost.get("params"),
                         cost.get("macs"), duration, t.user_attrs.get("run_dir", ""),
                         _error(t, retried) or t.user_attrs.get("pruned") or _stale(t, retried) or _repeat(t)])
    path = sweep_dir / "trials.csv"
    write_atomic(path, lambda tmp: Path(tmp).write_text(buffer.getvalue()))
    return path


def _repeat(trial: FrozenTrial) -> str:
    number = trial.user_attrs.get(REPEAT_OF)
    return "" if number is None else f"repeats trial {number}: its result, not run again"


def _error(trial: FrozenTrial, retried: dict[int, int]) -> str:
    error = trial.user_attrs.get("error") or ""
    if error == INTERRUPTED and trial.number in retried:
        return f"{INTERRUPTED}; run again as trial {retried[trial.number]}"
    return error


def _stale(trial: FrozenTrial, retried: dict[int, int]) -> str:
    if trial.state == TrialState.FAIL and trial.number in retried:
        return f"its process stopped (no heartbeat); run again as trial {retried[trial.number]}"
    return ""


def _overrides(trial: FrozenTrial, space: Any) -> list[str]:
    return space.overrides({k: trial.params[k] for k in space.dims if k in trial.params})


def best_trials(study: optuna.Study, directions: list[str]) -> list[FrozenTrial]:
    """The best completed trial (one objective), or the Pareto front (several), best first; a trial that
    reused another's result (the same parameters) is shown once, as the trial that ran."""
    done = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE
            and REPEAT_OF not in t.user_attrs]
    if not done:
        return []
    if len(directions) == 1:
        return sorted(done, key=lambda t: -t.value if directions[0] == "max" else t.value)
    front = [t for t in study.best_trials if REPEAT_OF not in t.user_attrs]
    return sorted(front, key=lambda t: -t.values[0] if directions[0] == "max" else t.values[0])


def write_best(study: optuna.Study, sweep_dir: Path, names: list[str], directions: list[str], rest: list[str],
               space: Any) -> Path | None:
    best = best_trials(study, directions)
    if not best:
        return None
    def entry(t: FrozenTrial) -> dict[str, Any]:
        overrides = _overrides(t, space)
        return {"trial": t.number, "values": dict(zip(names, t.values)), "params": dict(t.params),
                "overrides": overrides, "run_dir": t.user_attrs.get("run_dir"),
                "command": " ".join(["archfuse-train", *rest, *overrides])}

    if len(directions) == 1:
        doc = {"study": study.study_name, "objective": dict(zip(names, directions)), **entry(best[0])}
    else:
        doc = {"study": study.study_name, "objective": dict(zip(names, directions)),
               "pareto_front": [entry(t) for t in best]}
    path = sweep_dir / "best.yaml"
    text = "# The best trial of the sweep: paste `command` (or `overrides`) to run it again.\n" + \
        yaml.safe_dump(doc, sort_keys=False, width=10_000)
    write_atomic(path, lambda tmp: Path(tmp).write_text(text))
    return path


def write_plots(study: optuna.Study, sweep_dir: Path, names: list[str]) -> list[Path]:
    """optuna.visualization.matplotlib's views, each skipped quietly when the study cannot draw it yet
    (importances need two finished trials with different values), all of them without matplotlib."""
    try:
        import matplotlib
    except ImportError:  # pip install archfuse[sweep]
        return []

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as vis

    multi = len(names) > 1
    first = {"target": (lambda t: t.values[0]), "target_name": names[0]} if multi else {"target_name": names[0]}
    plots = {"history": lambda: vis.plot_optimization_history(study, **first),
             "importances": lambda: vis.plot_param_importances(study, **first),
             "parallel_coordinates": lambda: vis.plot_parallel_coordinate(study, **first)}
    if multi:
        plots["pareto_front"] = lambda: vis.plot_pareto_front(study, target_names=names)
    written = []
    for name, draw in plots.items():
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                axes = draw()
            figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
            path = sweep_dir / f"{name}.png"
            figure.savefig(path, dpi=100, bbox_inches="tight")
            plt.close(figure)
            written.append(path)
        except Exception:  # too few finished trials for this view
            plt.close("all")
    return written


def write_all(study: optuna.Study, sweep_dir: Path, names: list[str], directions: list[str], rest: list[str],
              space: Any) -> None:
    from archfuse.sweep.tensorboard import write_tensorboard

    write_csv(study, sweep_dir, names)
    write_best(study, sweep_dir, names, directions, rest, space)
    write_tensorboard(study, sweep_dir, names, write_plots(study, sweep_dir, names))


def top_table(study: optuna.Study, names: list[str], directions: list[str], sweep_dir: Path) -> str:
    """The top trials (or the Pareto front) with their params, objective(s) and cost, as text."""
    best = best_trials(study, directions)[:TOP if len(names) == 1 else 20]
    if not best:
        return "[sweep] no trial completed"
    params = _param_names(best)
    cost = [] if "cost/params" in names else ["cost/params"]
    head = ["trial", *params, *names, *cost]
    rows = [[str(t.number), *[_cell(t.params.get(p)) for p in params], *[number(v) for v in t.values],
             *[str((t.user_attrs.get("cost") or {}).get("params", "")) for _ in cost]] for t in best]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    line = lambda cells: "  ".join(c.ljust(w) for c, w in zip(cells, widths))  # noqa: E731
    title = "top trials" if len(names) == 1 else "Pareto front"
    return "\n".join([f"[sweep] {title} ({', '.join(f'{n} {d}' for n, d in zip(names, directions))}):",
                      line(head), *(line(r) for r in rows)])


def number(value: float) -> str:
    """An objective value: accuracies and losses to 4 decimals, counts (params, MACs) whole."""
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.4f}"


def short_value(value: Any) -> str:
    """A searched value as trial labels and [sweep] lines show it."""
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def format_values(names: list[str], values: list[float]) -> str:
    return " ".join(f"{n}={number(v)}" for n, v in zip(names, values))


def format_params(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={short_value(v)}" for k, v in params.items())


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)
