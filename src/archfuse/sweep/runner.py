"""The sweep loop: check everything, open (or continue) the study, then ask ``n_jobs`` trials at a time,
hand them to Hydra's launcher as one batch, and tell the study how each ended.

A study is continued by running the same command again: its trials count toward ``n_trials``, trials
left RUNNING by a killed process are failed through their stale heartbeat and retried once, and every
trial has its own run directory ``trials/<number>_<params>`` that is never reused."""

import json
import logging
import math
import shutil
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import optuna
from omegaconf import OmegaConf, open_dict
from optuna.trial import TrialState

from archfuse.config_dir import run_name
from archfuse.errors import ConfigError, RunInterrupted, RunPruned
from archfuse.files import write_atomic
from archfuse.objective import check_objective, objective_directions, objective_names
from archfuse.process import exit_now, interruptible
from archfuse.summary import read_summary
from archfuse.sweep import algorithms, results
from archfuse.sweep.results import REPEAT_OF
from archfuse.sweep.settings import read_settings
from archfuse.sweep.space import PARAMS_KEY, flatten_params, format_value, grid_of, parse_space
from archfuse.sweep.storage import Heartbeat, default_url, fail_interrupted, fail_stale, open_storage
from archfuse.sweep.trial_env import ENV

_LAUNCHER_LOGS = ("hydra._internal.core_plugins.basic_launcher", "hydra_plugins.hydra_joblib_launcher._core",
                  "hydra_plugins.hydra_joblib_launcher.joblib_launcher")
COMMAND = "fixed_overrides"  # the command line's overrides besides the searched keys, as the trial ran
SKIPPED = "over_budget"  # a trial asked by one worker after others had filled n_trials: never run
_NAME_EXCLUDE = ("quiet", "print_config", "paths.output_dir", "trainer.enable_progress_bar")


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Sweep:
    """One sweep of the sweeper plugin (``plugin`` holds Hydra's config, config loader and launcher)."""

    def __init__(self, plugin: Any, given: dict[str, Any]):
        self.plugin, self.given = plugin, given
        self.config = plugin.config
        self.made_dir = False

    # --- checks, before any trial -------------------------------------------------------------------
    def prepare(self, arguments: list[str]) -> None:
        s = self.s = read_settings(self.given)
        task = {k: OmegaConf.to_container(self.config[k], resolve=False) if OmegaConf.is_config(self.config[k])
                else self.config[k] for k in ("objective", "objective_direction") if k in self.config}
        check_objective(task)
        self.names, self.directions = objective_names(task), objective_directions(task)
        self.metrics = list(self.names)  # what each run returns; the study's objectives may be their scalarisation
        if s.scalarize is not None:
            self._scalarize(s.scalarize)
        algorithms.check_sampler(s.sampler, len(self.names))
        self.pruner = algorithms.check_pruner(s.pruner, len(self.names), self.names)
        self.space, self.rest = parse_space(s.params, arguments)
        if not self.space.dims:
            raise ConfigError(PARAMS_KEY, "searches no key; choose a search space (search=width_depth_activation) "
                              "or give one, e.g. 'model.width=choice(8,16,32)'")
        self.grid = grid_of(self.space) if s.sampler == "grid" else None
        cells = math.prod(len(v) for v in self.grid.values()) if self.grid else None
        self.n_trials = min(s.n_trials or cells, cells) if cells else s.n_trials
        self._check_keys_exist()
        for metric in s.constraints:
            if not str(metric).startswith(("cost/", "val/", "cv/")):
                raise ConfigError(f"hydra.sweeper.constraints.{metric}", "must name a cost/ or val/ metric of "
                                  "summary.json, e.g. cost/params")
        self.name = s.study_name or self._default_name()
        out = Path(str(self.config.paths.output_dir))
        self.sweep_dir = (out if out.is_absolute() else Path.cwd() / out).resolve() / "sweeps" / self.name
        url = s.storage
        if url is None:  # the default SQLite file lives in the sweep directory
            self.made_dir = not self.sweep_dir.exists()
            self.sweep_dir.mkdir(parents=True, exist_ok=True)
            url = default_url(self.sweep_dir)
        self.url = url
        self.storage = open_storage(url, s.heartbeat_interval, s.grace_period)
        self.study = self._open_study()

    def _scalarize(self, weight: float) -> None:
        """objective=[METRIC, cost/NAME] as one objective METRIC - weight * cost (+ for a minimised METRIC),
        which can be pruned: each epoch reports METRIC with the same penalty when the cost is cost/params."""
        names, directions = self.names, self.directions
        if len(names) != 2 or not names[1].startswith("cost/") or directions[1] != "min":
            raise ConfigError("hydra.sweeper.scalarize", f"needs objective=[METRIC,cost/NAME] with the cost "
                              f"minimised; got {names} ({directions})")
        self.sign = -1.0 if directions[0] == "max" else 1.0
        self.weight = float(weight)
        self.names = [f"{names[0]} {'-' if self.sign < 0 else '+'} {weight:g}*{names[1]}"]
        self.directions = directions[:1]

    def _check_keys_exist(self) -> None:
        """Every searched key composes with the rest of the command line (a misspelt key fails here)."""
        loader = self.plugin.hydra_context.config_loader
        sample = {k: _first(d) for k, d in self.space.dims.items()}
        overrides = self.rest + self.space.overrides(sample)
        try:
            loader.load_sweep_config(self.config, overrides)
            return
        except Exception:
            pass
        for key in [*self.space.fixed, *self.space.dims]:
            value = self.space.fixed.get(key) or format_value(sample[key])
            try:
                loader.load_sweep_config(self.config, self.rest + [f"{key}={value}"])
            except Exception as err:
                text = str(err).splitlines()[0]
                hint = "no such key in the config" if "Could not override" in text or "not in struct" in text else text
                raise ConfigError(f"{PARAMS_KEY}.{key}", f"{hint}; search keys the run has (see archfuse-train "
                                  "--cfg job), or add a new one with +KEY=...") from None
        loader.load_sweep_config(self.config, overrides)  # the whole combination: Hydra's own message

    def _default_name(self) -> str:
        """Named after the search space and the command line, so the same command continues the same study."""
        search = str(self.config.hydra.runtime.choices.get("search") or "sweep")
        parts = [a.replace("=", "-") for a in self.rest if not a.lstrip("+~").startswith(("search=", *_NAME_EXCLUDE))]
        parts += [f"{k}-searched" for k in self.space.dims if not self._from_params(k)]
        if self.s.scalarize is not None:  # another objective than the Pareto study's: another study
            parts.append(f"scalarize-{self.s.scalarize:g}")
        return run_name("+".join([search, *parts]))

    def _from_params(self, key: str) -> bool:
        return key in flatten_params(self.s.params)

    def _open_study(self) -> optuna.Study:
        def sampler(seed: int | None) -> optuna.samplers.BaseSampler:
            constraints = self._constraints_func() if self.s.constraints else None
            return algorithms.build_sampler(self.s.sampler, seed, self.s.sampler_args, self.grid, constraints)

        pruner = algorithms.build_pruner(self.pruner, self.s.pruner_args)
        directions = ["maximize" if d == "max" else "minimize" for d in self.directions]
        study = optuna.create_study(study_name=self.name, storage=self.storage, sampler=sampler(self.s.seed),
                                    pruner=pruner, directions=directions, load_if_exists=True)
        existing = len(study.get_trials(deepcopy=False))
        if existing and self.s.seed is not None:
            # A sampler seeded as before would ask the points it asked first again: continue the seeded
            # stream at the study's trial count instead (the same commands still ask the same trials).
            study.sampler = sampler(self.s.seed + existing)
        if [d.name.lower() for d in study.directions] != directions:
            raise ConfigError("objective", f"study {self.name!r} in {self.url} was created with directions "
                              f"{[d.name.lower() for d in study.directions]}; this sweep asks {directions}: give "
                              "another hydra.sweeper.study_name")
        if not study.user_attrs.get("objective"):
            study.set_user_attr("objective", self.names)
        return study

    @staticmethod
    def _constraints_func():
        return lambda trial: trial.user_attrs.get("constraints", [0.0])

    # --- the loop -------------------------------------------------------------------------------------
    def counted(self) -> list[optuna.trial.FrozenTrial]:
        """The trials that count toward n_trials: not waiting, not skipped, not a stale one retried since."""
        trials = self.study.get_trials(deepcopy=False)
        retried = {t.system_attrs.get("failed_trial") for t in trials} - {None}
        return [t for t in trials if t.state != TrialState.WAITING and not t.user_attrs.get(SKIPPED)
                and not (t.state == TrialState.FAIL and t.number in retried)]

    def run(self) -> int:
        heartbeat = Heartbeat(self.storage, self.s.heartbeat_interval)
        self._prepare_launcher()
        started = time.perf_counter()
        launched, batch = 0, []
        try:
            while True:
                fail_stale(self.study)
                left = self.n_trials - len(self.counted())
                if left <= 0:
                    break
                batch, reused = [], 0
                for _ in range(min(self.s.n_jobs, left)):
                    trial = self.study.ask(self.space.dims)
                    if self._over_budget(trial):
                        break
                    if self._reuse_repeat(trial):
                        reused += 1
                        continue
                    heartbeat.add(trial._trial_id)
                    batch.append(trial)
                if not batch:
                    if reused:
                        continue
                    break
                jobs = [self._job(t) for t in batch]
                for t in batch:
                    print(f"[sweep] trial {t.number} starts: {results.format_params(t.params)}", flush=True)
                launch_started = time.perf_counter()
                with interruptible():
                    returns = self.plugin.launcher.launch(jobs, initial_job_idx=batch[0].number)
                self._launch_seconds += time.perf_counter() - launch_started
                for trial, ret in zip(batch, returns):
                    self._tell(trial, ret)
                    heartbeat.remove(trial._trial_id)
                    (self.sweep_dir / ".trials" / f"{trial.number}.json").unlink(missing_ok=True)
                launched += len(batch)
                batch = []
                results.write_csv(self.study, self.sweep_dir, self.names)
                if self._too_many_failures():
                    break
            overhead = time.perf_counter() - started - self._launch_seconds
        except (RunInterrupted, KeyboardInterrupt) as err:
            self._interrupted(batch, err if isinstance(err, RunInterrupted) else RunInterrupted(2))
        finally:
            heartbeat.stop()
            _stop_joblib_workers()
        return self._finish(launched, overhead)

    def _interrupted(self, batch: list[optuna.Trial], err: RunInterrupted) -> None:
        """The trials that were running are failed as interrupted and queued again; the same command
        continues the study from there."""
        for trial in batch:
            fail_interrupted(self.study, trial)
        results.write_csv(self.study, self.sweep_dir, self.names)
        numbers = ", ".join(str(t.number) for t in batch) or "none"
        print(f"archfuse-train: sweep {self.name} interrupted by {err.signal_name}: trial(s) {numbers} recorded as "
              "failed (interrupted) and queued again; the same command continues the study", file=sys.stderr, flush=True)
        err.reported = True
        raise err from None

    def _prepare_launcher(self) -> None:
        with open_dict(self.config):  # the launcher writes multirun.yaml into the sweep directory
            self.config.hydra.sweep.dir = str(self.sweep_dir)
        self.sweep_dir.mkdir(parents=True, exist_ok=True)
        self._launch_seconds = 0.0

    def _reuse_repeat(self, trial: optuna.Trial) -> bool:
        """A trial asking for parameters a completed trial already ran gets that trial's result, not a run:
        a run is seeded, so the same config trains the same model (samplers over a few discrete choices
        ask for the same point again and again). ``hydra.sweeper.rerun_repeats=true`` runs them anyway."""
        if self.s.rerun_repeats:
            return False
        done = self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        command = self._fixed_overrides()  # a study continued with other keys set is another run
        same = next((t for t in done if t.params == trial.params and t.user_attrs.get(COMMAND) == command), None)
        if same is None:
            return False
        original = same.user_attrs.get(REPEAT_OF, same.number)
        for name in ("run_dir", "cost", "objectives", "constraints", COMMAND):
            if name in same.user_attrs:
                trial.set_user_attr(name, same.user_attrs[name])
        trial.set_user_attr(REPEAT_OF, original)
        self.study.tell(trial, same.values if len(same.values) > 1 else same.value)
        print(f"[sweep] trial {trial.number} repeats trial {original} ({results.format_params(trial.params)}): its result "
              f"{results.format_values(self.names, same.values)} is reused, not run again", flush=True)
        return True

    def _fixed_overrides(self) -> str:
        """The command line's overrides besides the searched keys, less those that change no result."""
        return " ".join(a for a in self.rest if not a.lstrip("+~").startswith(_NAME_EXCLUDE))

    def _over_budget(self, trial: optuna.Trial) -> bool:
        """Another worker may have asked at the same moment: trial numbers say who came first."""
        before = [t for t in self.counted() if t.number < trial.number]
        if len(before) < self.n_trials:
            return False
        trial.set_user_attr(SKIPPED, True)
        self.study.tell(trial, state=TrialState.FAIL)
        return True

    def _job(self, trial: optuna.Trial) -> list[str]:
        params = {k: trial.params[k] for k in self.space.dims}
        label = run_name("+".join(f"{k}-{results.short_value(v)}" for k, v in params.items()))
        subdir = f"trials/{trial.number:03d}_{label}"
        while (self.sweep_dir / subdir).exists():  # a directory left by a study that was deleted: keep it
            subdir += "_again"
        trial.set_user_attr("run_dir", subdir)
        trial.set_user_attr(COMMAND, self._fixed_overrides())
        spec = {"storage": self.url, "study": self.name, "trial_id": trial._trial_id, "number": trial.number,
                "pruner": self.pruner, "pruner_args": self.s.pruner_args, "monitor": self._monitor()}
        if self.s.scalarize is not None and self.metrics[1] == "cost/params":
            spec["params_penalty"] = self.sign * self.weight  # per parameter, added to each epoch's report
        spec_file = self.sweep_dir / ".trials" / f"{trial.number}.json"
        write_atomic(spec_file, lambda tmp: Path(tmp).write_text(json.dumps(spec)))
        return [*self.rest, *self.space.overrides(params), f"hydra.sweep.dir={_quote(str(self.sweep_dir))}",
                f"hydra.sweep.subdir={_quote(subdir)}", f"++hydra.job.env_set.{ENV}={_quote(str(spec_file))}"]

    def _monitor(self) -> str:
        """What each epoch reports for pruning: the objective itself when it is a per-epoch val/ metric."""
        name = self.metrics[0]
        return name if name.startswith("val/") else "val/acc_best"

    def _tell(self, trial: optuna.Trial, ret: Any) -> None:
        from hydra.core.utils import JobStatus

        run_dir = self.sweep_dir / trial.user_attrs["run_dir"]
        summary = _trial_summary(run_dir)
        if summary.get("cost"):
            trial.set_user_attr("cost", summary["cost"])
        if ret.status == JobStatus.COMPLETED:
            value = ret.return_value
            values = [float(v) for v in (value if isinstance(value, list | tuple) else [value])]
            if self.s.scalarize is not None and len(values) == 2:
                trial.set_user_attr("objectives", dict(zip(self.metrics, values)))
                values = [values[0] + self.sign * self.weight * values[1]]
            if any(not math.isfinite(v) for v in values):
                return self._fail(trial, f"objective {', '.join(self.names)} is {values} (not a finite number)")
            if self.s.constraints:
                trial.set_user_attr("constraints", algorithms.constraint_values(self.s.constraints, summary))
            self.study.tell(trial, values if len(values) > 1 else values[0])
            print(f"[sweep] trial {trial.number} COMPLETE {results.format_values(self.names, values)} "
                  f"{results.format_params(trial.params)}", flush=True)
            return None
        err = ret._return_value
        if isinstance(err, RunPruned):
            trial.set_user_attr("pruned", str(err))
            self.study.tell(trial, state=TrialState.PRUNED)
            print(f"[sweep] trial {trial.number} PRUNED {err} {results.format_params(trial.params)}", flush=True)
            return None
        text = str(err) if isinstance(err, ConfigError) else f"{type(err).__name__}: {err}"
        if run_dir.is_dir() and not isinstance(err, ConfigError):
            import traceback

            (run_dir / "error.txt").write_text("".join(traceback.format_exception(err)))
        return self._fail(trial, text)

    def _fail(self, trial: optuna.Trial, error: str) -> None:
        trial.set_user_attr("error", error)
        self.study.tell(trial, state=TrialState.FAIL)
        print(f"[sweep] trial {trial.number} FAIL {error} {results.format_params(trial.params)}", file=sys.stderr, flush=True)

    def _failed(self) -> list[optuna.trial.FrozenTrial]:
        return [t for t in self.counted() if t.state == TrialState.FAIL]

    def _too_many_failures(self) -> bool:
        return len(self._failed()) > self.s.max_failure_rate * self.n_trials

    def _finish(self, launched: int, overhead: float) -> int:
        results.write_all(self.study, self.sweep_dir, self.names, self.directions, self.rest, self.space)
        print(results.top_table(self.study, self.names, self.directions, self.sweep_dir), flush=True)
        trials = self.counted()
        states = {s: sum(t.state == s for t in trials) for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)}
        print(f"[sweep] {self.name}: {len(trials)}/{self.n_trials} trials ({states[TrialState.COMPLETE]} complete, "
              f"{states[TrialState.PRUNED]} pruned, {states[TrialState.FAIL]} failed; {launched} run now, "
              f"sweeper overhead {overhead / max(launched, 1):.2f} s/trial) in {self.sweep_dir}", flush=True)
        failed = self._failed()
        for t in failed:
            print(f"  failed trial {t.number}: {t.user_attrs.get('error', 'stopped (its process ended)')}",
                  file=sys.stderr)
        if self._too_many_failures():
            print(f"archfuse-train: error: the sweep stopped: {len(failed)} of {self.n_trials} trials failed, more "
                  f"than hydra.sweeper.max_failure_rate={self.s.max_failure_rate}", file=sys.stderr)
            return 1
        return 0

    def discard(self) -> None:
        if self.made_dir:
            shutil.rmtree(self.sweep_dir, ignore_errors=True)


def _stop_joblib_workers() -> None:
    """hydra/launcher=joblib leaves loky's worker processes idle for 300 s, and the process would wait
    for them at exit: end them once the sweep is done."""
    loky = sys.modules.get("joblib.externals.loky")
    if loky is not None:
        loky.get_reusable_executor().shutdown(wait=True, kill_workers=True)


def _first(dist: Any) -> Any:
    return dist.choices[0] if hasattr(dist, "choices") else dist.low


def _trial_summary(run_dir: Path) -> dict[str, Any]:
    """The trial's summary; empty when the trial wrote none (it failed before it finished)."""
    try:
        return read_summary(run_dir)
    except ConfigError:
        return {}


def run_sweep(plugin: Any, given: dict[str, Any], arguments: list[str]) -> None:
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    # ask/tell with our own heartbeat thread (storage.Heartbeat) is what Optuna warns about: it is meant
    warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used with Study.optimize")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for name in _LAUNCHER_LOGS:  # each trial is announced by a [sweep] line instead of its override list
        logging.getLogger(name).setLevel(logging.WARNING)
    sweep = Sweep(plugin, given)
    try:
        sweep.prepare(arguments)
    except ConfigError as err:
        sweep.discard()
        print(f"archfuse-train: error: {err}", file=sys.stderr)
        exit_now(2)
    code = sweep.run()
    if code:
        exit_now(code)
