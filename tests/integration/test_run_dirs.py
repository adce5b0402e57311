"""Every run gets a directory of its own, claimed atomically: the same command started several times in
the same second (by hand, or as a job array) gives as many directories, summaries and checkpoints."""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

from archfuse.config_dir import run_name
from archfuse.ranks import _claimed, claim_dir
from conftest import cli_env, run_dirs, summary

SMALL = ["debug=fast", "quiet=true", "model=mlp", "model.hidden_sizes=[8]", "trainer.num_threads=1"]


def test_six_identical_commands_started_together_get_six_directories(tmp_path):
    # The default name starts with the time to the second; to make all six ask for one name whatever the
    # machine's speed, the time stamp is left out here: the directory is claimed as the default one is.
    claimed = "hydra.run.dir=${claim_dir:outputs/runs/same}"

    def start(_):
        return subprocess.run([sys.executable, "-m", "archfuse.train", *SMALL, claimed], cwd=tmp_path,
                              env=cli_env(), capture_output=True, text=True, timeout=600)

    with ThreadPoolExecutor(6) as pool:
        procs = list(pool.map(start, range(6)))
    assert [p.returncode for p in procs] == [0] * 6, [p.stderr[-2000:] for p in procs]
    runs = run_dirs(tmp_path)
    assert sorted(r.name for r in runs) == ["same", "same-2", "same-3", "same-4", "same-5", "same-6"]
    writers = []
    for run in runs:
        s = summary(run)
        assert s["config"]["paths"]["run_dir"] == str(run)  # the directory used is the one recorded
        for key in ("checkpoint", "best_checkpoint"):
            assert os.path.dirname(os.path.dirname(s[key])) == str(run)  # its checkpoints are in its own folder
        assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.ckpt"]
        writers.append({e.name.rsplit(".", 2)[1] for e in run.glob("events.out.tfevents.*")})  # the pid
    assert all(len(pids) == 1 for pids in writers) and len(set.union(*writers)) == 6  # one process's events each
    printed = sorted(line.split("run directory", 1)[1].strip(" │") for p in procs for line in p.stdout.splitlines()
                     if "run directory" in line)
    assert len(printed) == 6 and len(set(printed)) == 6


def test_a_claimed_name_is_never_given_twice(tmp_path):
    wanted = str(tmp_path / "runs" / "2026-01-01_00-00-00_x")
    got = []
    for _ in range(3):
        _claimed.clear()  # as three processes would see it
        got.append(claim_dir(wanted))
    assert got == [wanted, wanted + "-2", wanted + "-3"]
    assert claim_dir(wanted) == wanted + "-3"  # resolved again in the same process: the same directory


def test_long_names_are_cut_between_overrides_and_stay_apart():
    overrides = "+".join(f"recipe.prune_channels.option_{i}-{i}" for i in range(8))
    a, b = run_name(overrides + "+trainer.max_epochs-3"), run_name(overrides + "+trainer.max_epochs-4")
    assert a != b and len(a) <= 120 and len(b) <= 120
    assert all(part.startswith("recipe.prune_channels.option_") for part in a.split("+")[:-1])  # whole overrides
