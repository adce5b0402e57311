"""DDP that works inside Hydra runs and multiruns.

Lightning starts the extra ranks by re-running the command line. Inside a Hydra multirun that would
re-run the whole sweep in every child. Here each child re-runs only the current job: the job's own
overrides, pointed at the job's run directory, writing nothing of its own there (rank 0 writes all
files). After the job the process group is torn down so the next job of a sweep starts fresh ranks.
"""

import ctypes
import os
import signal
import subprocess
import sys

import torch.distributed as dist
from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher

from archfuse.errors import RunFailed

_DDP_ENV = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")
_PARENT_PID = "ARCHFUSE_RANK0_PID"
_PARENT_ONLY = ("hydra.mode", "hydra.run.", "hydra.sweep.", "hydra.job.num", "hydra.job.id", "hydra/sweeper",
                "hydra/launcher", "hydra.sweeper.", "hydra.launcher.")


def child_command() -> list[str]:
    """The command line that re-runs the current Hydra job in its run directory (the rank comes from the
    environment; conf/hydra keeps the other ranks from writing files there)."""
    from hydra.core.hydra_config import HydraConfig

    hc = HydraConfig.get()
    run_dir = hc.runtime.output_dir.replace("'", r"\'")
    # The user's hydra.* overrides (a config search path, say) hold for the ranks too; what makes the
    # parent a sweep or names its directory does not: each rank re-runs this one job in its directory.
    hydra = [o for o in hc.overrides.hydra if not o.startswith(_PARENT_ONLY)]
    return [sys.executable, "-m", "archfuse.train", *hc.overrides.task, *hydra, f"hydra.run.dir='{run_dir}'"]


class JobLauncher(_SubprocessScriptLauncher):
    """Starts ranks 1..N-1 of this node as re-runs of the current Hydra job."""

    spawned: list["JobLauncher"] = []

    def _call_children_scripts(self) -> None:
        from hydra.core.hydra_config import HydraConfig

        if not HydraConfig.initialized():
            return super()._call_children_scripts()
        self._check_can_spawn_children()
        env = self.cluster_environment
        os.environ.update(MASTER_ADDR=env.main_address, MASTER_PORT=str(env.main_port), NODE_RANK=str(env.node_rank()),
                          LOCAL_RANK=str(env.local_rank()), WORLD_SIZE=str(self.num_processes * self.num_nodes))
        cwd = HydraConfig.get().runtime.cwd
        for local_rank in range(1, self.num_processes):
            child_env = {**os.environ, "LOCAL_RANK": str(local_rank), _PARENT_PID: str(os.getpid())}
            self.procs.append(subprocess.Popen(child_command(), env=child_env, cwd=cwd))
        JobLauncher.spawned.append(self)


class ArchfuseDDPStrategy(DDPStrategy):
    def _configure_launcher(self) -> None:
        if self._start_method == "popen":
            self._launcher = JobLauncher(self.cluster_environment, self.num_processes, self.num_nodes)
        else:
            super()._configure_launcher()


def follow_parent() -> None:
    """In a rank started by JobLauncher: die with the process that started it.

    Without this a rank whose rank 0 died waits in a collective for half an hour (and holds the
    terminal's or a caller's output pipe open all that time).
    """
    parent = os.environ.pop(_PARENT_PID, None)
    if parent is None or not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != int(parent):  # the parent died before prctl took effect
        os._exit(1)


def end_job(failed: bool = False) -> None:
    """After a job, on every rank: (rank 0) end the ranks it started, then tear down the process group.

    After a good job rank 0 waits for its ranks and raises RunFailed if one failed. After a failed job
    (``failed``) it kills those still running, since they may be waiting in a collective for rank 0; the
    error to report is rank 0's own, next to a line naming any rank that had failed first (rank 0's
    error is then often only the news of it: "connection closed by peer").

    Every rank destroys its process group before it exits: a rank that exits with gloo's threads still
    running can abort in C++ teardown. The started processes are removed from Lightning's list in place,
    which ends Lightning's watcher thread for this job; left running, it would kill the next job of a
    sweep on a late poll.
    """
    bad_ranks = []
    for launcher in JobLauncher.spawned:
        for rank, proc in enumerate(launcher.procs, start=1):
            if failed and proc.poll() is None:
                proc.kill()
            elif proc.wait() != 0 and not (failed and proc.returncode == -signal.SIGKILL):  # killed by rank 0
                bad_ranks.append(f"local rank {rank} exited with code {proc.returncode}")
            proc.wait()
        launcher.procs.clear()
    JobLauncher.spawned.clear()
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    for key in _DDP_ENV:
        os.environ.pop(key, None)
    if bad_ranks and failed:
        print("archfuse-train: DDP " + "; ".join(bad_ranks) + " (its output is above)", file=sys.stderr)
    elif bad_ranks:
        raise RunFailed("DDP job failed: " + "; ".join(bad_ranks) + " (its output is above)")
