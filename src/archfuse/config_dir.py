"""Where the Hydra configs live (inside the installed package, or in the source tree), and the resolvers
that name a run's directory."""

import os
from datetime import datetime
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def config_dir() -> str:
    """The conf/ folder: shipped as archfuse/conf in a wheel, at the repository root in a checkout."""
    shipped = _PACKAGE_DIR / "conf"
    if shipped.is_dir():
        return str(shipped)
    source = _PACKAGE_DIR.parent.parent / "conf"
    if source.is_dir():
        return str(source)
    raise FileNotFoundError(f"archfuse configs not found in {shipped} or {source}; reinstall archfuse")


def run_name(override_dirname: str) -> str:
    """A readable, filesystem-safe run name from Hydra's override string."""
    name = override_dirname.replace("/", "-").replace(",", "_")
    name = "".join(c for c in name if c.isalnum() or c in "._-+")
    return name[:120].rstrip("+-_.") or "default"


def global_rank() -> int:
    """Zero exactly in the process that writes a run's files.

    torchrun sets RANK; archfuse's own DDP ranks (and Lightning's) carry LOCAL_RANK and NODE_RANK; srun
    sets SLURM_PROCID. The last counts only when the others are absent: inside a one-task SLURM job the
    ranks archfuse starts inherit SLURM_PROCID=0.
    """
    env = os.environ
    if env.get("RANK", "").isdigit():
        return int(env["RANK"])
    own = int(env.get("NODE_RANK", "0") or 0) + int(env.get("LOCAL_RANK", "0") or 0)
    return own or int(env.get("SLURM_PROCID", "0") or 0)


def launch_stamp(time_format: str) -> str:
    """What starts a run directory's name: an id that every process of one launch shares.

    Processes started by torchrun or srun compose their configs independently, a moment apart, and
    possibly on several nodes; a timestamp would give each its own directory. The launcher's id does not:
    the job and step ids of a multi-task SLURM step, or torchrun's rendezvous id (``--rdzv-id``;
    ``--standalone`` makes one up). Otherwise, the time.
    """
    env = os.environ
    if env.get("SLURM_JOB_ID") and env.get("SLURM_STEP_ID") and int(env.get("SLURM_NTASKS", "1") or 1) > 1:
        return f"slurm-{env['SLURM_JOB_ID']}.{env['SLURM_STEP_ID']}"
    run_id = env.get("TORCHELASTIC_RUN_ID", "none")
    if run_id != "none":
        return "torchrun-" + run_name(run_id)[:36]
    return datetime.now().strftime(time_format)


def on_rank_zero(value, otherwise=None):
    """``value`` in the process that writes the run's files (global rank 0), ``otherwise`` elsewhere."""
    return value if global_rank() == 0 else otherwise


def register_resolvers() -> None:
    from omegaconf import OmegaConf

    OmegaConf.register_new_resolver("run_name", run_name, replace=True)
    OmegaConf.register_new_resolver("launch_stamp", launch_stamp, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("on_rank_zero", on_rank_zero, replace=True)
