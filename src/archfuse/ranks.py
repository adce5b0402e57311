"""Which process of a launch this is, and the id every process of one launch shares."""

import os
from datetime import datetime

from archfuse.config_dir import run_name


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
