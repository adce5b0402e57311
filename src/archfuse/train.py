"""archfuse-train: compose the config, then hand it to archfuse.run.job. Imports nothing heavy until
the run starts, so ``--help`` answers at once."""

import sys

import hydra
from omegaconf import DictConfig, OmegaConf

from archfuse.command_line import check_command_line, expand_home
from archfuse.config_dir import config_dir
from archfuse.ranks import global_rank
from archfuse.resolvers import register_resolvers
from archfuse.errors import ConfigError, RunFailed, RunInterrupted
from archfuse.process import exit_now, importable_cwd, interruptible
from archfuse.sweep.multirun_overrides import check_overrides, params_on_command_line
from archfuse.sweep.trial_env import in_sweep

register_resolvers()

# Jobs of this sweep that stopped with a ConfigError or RunFailed: (job label, message, exit code).
_failed_jobs: list[tuple[str, str, int]] = []


@hydra.main(version_base="1.3", config_path=config_dir(), config_name="train")
def _train(cfg: DictConfig) -> float:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    choices = {k: str(v) for k, v in HydraConfig.get().runtime.choices.items() if not k.startswith("hydra")}
    if cfg.get("print_config") and global_rank() == 0:
        from archfuse.report import print_config_tree

        print_config_tree(cfg)
    try:
        config = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
        from archfuse.run.job import run_job
        from archfuse.sweep.trial import trial_callbacks

        return run_job(config, choices, global_rank() == 0, callbacks_for=trial_callbacks(config))
    except (ConfigError, RunFailed) as err:
        code = 2 if isinstance(err, ConfigError) else 1
        hc = HydraConfig.get()
        if hc.mode != RunMode.MULTIRUN:
            print(f"archfuse-train: error: {err}", file=sys.stderr)
            sys.exit(code)
        if in_sweep():  # an Optuna sweep records the trial as failed, with this error, and lists it at the end
            raise
        # In a sweep one bad combination must not stop the others: report it now and again at the end.
        label = f"#{hc.job.num} {hc.job.override_dirname or '(no overrides)'}"
        print(f"archfuse-train: job {label} failed: {err}", file=sys.stderr)
        _failed_jobs.append((label, str(err), code))
        return float("nan")


def main(fast_exit: bool = True) -> None:
    code = 0
    try:
        with interruptible():  # SIGINT, SIGTERM: an orderly stop that says what was kept (RunInterrupted)
            _main()
    except RunInterrupted as err:  # the run, a multirun or a sweep: the signal was for the whole command
        if global_rank() == 0 and not err.reported:
            print(f"archfuse-train: {err.report()}", file=sys.stderr)
        code = err.exit_code
    if _failed_jobs:
        print(f"archfuse-train: error: {len(_failed_jobs)} job(s) of the sweep failed:", file=sys.stderr)
        for label, message, _ in _failed_jobs:
            print(f"  {label}: {message}", file=sys.stderr)
        code = code or max(failed for *_, failed in _failed_jobs)
    if fast_exit:
        exit_now(code)
    if code:
        sys.exit(code)


def _main() -> None:
    importable_cwd()
    sys.argv[1:] = params_on_command_line(expand_home(sys.argv[1:]))
    bad = check_overrides(sys.argv[1:])
    if not bad and global_rank() == 0:  # a DDP rank runs the command line rank 0 has checked already
        bad = check_command_line(sys.argv[1:], config_dir(), "train", output_key="paths.output_dir")
    if bad:
        print(f"archfuse-train: error: {bad}", file=sys.stderr)
        sys.exit(2)
    _train()


if __name__ == "__main__":
    main()
