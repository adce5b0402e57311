"""Which process of a launch this is, and the id every process of one launch shares."""

import itertools
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
    return launcher_id() or datetime.now().strftime(time_format)


def launcher_id() -> str | None:
    """The id all processes of a multi-process launch share (torchrun, a multi-task srun step), or None."""
    env = os.environ
    if env.get("SLURM_JOB_ID") and env.get("SLURM_STEP_ID") and int(env.get("SLURM_NTASKS", "1") or 1) > 1:
        return f"slurm-{env['SLURM_JOB_ID']}.{env['SLURM_STEP_ID']}"
    run_id = env.get("TORCHELASTIC_RUN_ID", "none")
    if run_id != "none":
        return "torchrun-" + run_name(run_id)[:36]
    return None


# Directories this process made its own, by the name asked for: a config resolved again gets the same one.
_claimed: dict[str, str] = {}


def claim_dir(path: str) -> str:
    """A new directory of its own for this run: ``path`` itself, or when another run has it already,
    ``path-2``, ``path-3``, ... ``os.mkdir`` either creates a directory or fails, so runs started at
    the same moment never share one. The processes of one multi-process launch share the launcher's id
    in ``path``: rank 0 creates it, and every rank takes it as it is."""
    if path in _claimed:
        return _claimed[path]
    if launcher_id() is not None or global_rank() != 0:
        if global_rank() == 0:
            os.makedirs(path, exist_ok=True)
        _claimed[path] = path
        return path
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    for n in itertools.count(1):
        candidate = path if n == 1 else f"{path}-{n}"
        try:
            os.mkdir(candidate)
        except FileExistsError:
            continue
        _claimed[path] = candidate
        return candidate
    raise AssertionError("unreachable")


def on_rank_zero(value, otherwise=None):
    """``value`` in the process that writes the run's files (global rank 0), ``otherwise`` elsewhere."""
    return value if global_rank() == 0 else otherwise


def claim_subdir(parent: str, name: str) -> str:
    """A multirun job's directory inside the multirun's: ``name`` (or ``name-2``, ...), made its own."""
    return os.path.basename(claim_dir(os.path.join(parent, name)))
