"""Trial pruning against none, and the sweeper's own overhead per trial.

The same search (--search, default width_depth_activation; the same TPE seed) with each pruner of
--pruners, the first (none) the baseline. Reported: the wall time of each sweep and their ratio
(goal <= 0.5), the best objective of each and their difference in percentage points (goal <= 0.3 pp),
and the sweeper's overhead per trial (the time of the sweep loop outside the launched trials:
asking, telling, writing trials.csv) against the mean trial's time (goal < 5 %).

    python bench/sweep.py                              # 20 trials of 10 epochs each (about 1 hour on 2 cores)
    python bench/sweep.py --trials 8 --epochs 3 --extra data.train_subset=512    # a quick look
    python bench/sweep.py --seeds 0,1,2 --pruners none,median,successive_halving  # over sampler seeds
    python bench/sweep.py --search optimizer --extra model=convnet    # learning rate and weight decay, fixed net

Every sweep runs in a fresh directory under --work (default /tmp/archfuse_bench_sweep).
"""

import argparse
import csv
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def run_sweep(work: Path, pruner: str, seed: int, args: argparse.Namespace) -> dict:
    cwd = work / f"{pruner}_{seed}"
    shutil.rmtree(cwd, ignore_errors=True)
    cwd.mkdir(parents=True)
    cmd = [sys.executable, "-m", "archfuse.train", "-m", f"search={args.search}", "quiet=true",
           f"hydra.sweeper.n_trials={args.trials}", f"hydra.sweeper.seed={seed}", f"hydra.sweeper.pruner={pruner}",
           f"trainer.max_epochs={args.epochs}", "trainer.num_threads=1", *args.extra]
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{pruner}: exit {proc.returncode}\n{proc.stderr[-3000:]}")
    (sweep,) = (cwd / "outputs" / "sweeps").iterdir()
    with open(sweep / "trials.csv") as f:
        trials = list(csv.DictReader(f))
    done = [t for t in trials if t["state"] == "COMPLETE"]
    overhead = float(re.search(r"sweeper overhead ([0-9.]+) s/trial", proc.stdout).group(1))
    durations = [float(t["duration_s"]) for t in trials if t["duration_s"]]
    return {"pruner": pruner, "seed": seed, "wall": wall, "best": max(float(t["val/acc_best"]) for t in done),
            "complete": len(done), "pruned": sum(t["state"] == "PRUNED" for t in trials),
            "overhead": overhead, "trial_mean": sum(durations) / len(durations)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", default="0", help="sampler seeds, comma-separated: each pruner runs once per seed")
    parser.add_argument("--search", default="width_depth_activation", help="a search option of conf/search")
    parser.add_argument("--pruners", default="none,median", help="the first is the baseline the others are held to")
    parser.add_argument("--work", type=Path, default=Path("/tmp/archfuse_bench_sweep"))
    parser.add_argument("--extra", nargs="*", default=[], help="more archfuse-train overrides")
    args = parser.parse_args()
    from archfuse.host import host_line

    print(host_line(), flush=True)
    seeds = [int(s) for s in args.seeds.split(",")]
    pruners = args.pruners.split(",")
    rows = [run_sweep(args.work, pruner, seed, args) for seed in seeds for pruner in pruners]
    print(f"search={args.search}, {args.trials} trials of {args.epochs} epochs, TPE seeds {args.seeds}, "
          f"extra: {' '.join(args.extra) or '-'}\n")
    print("| pruner | seed | wall s | best val/acc_best | complete | pruned | sweeper overhead s/trial | mean trial s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['pruner']} | {r['seed']} | {r['wall']:.1f} | {r['best']:.4f} | {r['complete']} | {r['pruned']} | "
              f"{r['overhead']:.2f} | {r['trial_mean']:.2f} |")
    base = {r["seed"]: r for r in rows if r["pruner"] == pruners[0]}
    for pruner in pruners[1:]:
        mine = [r for r in rows if r["pruner"] == pruner]
        ratios = [r["wall"] / base[r["seed"]]["wall"] for r in mine]
        diffs = [100 * (base[r["seed"]]["best"] - r["best"]) for r in mine]
        print(f"\n{pruner} against {pruners[0]} over {len(mine)} seed(s): wall-time ratio "
              f"{statistics.fmean(ratios):.2f} (each: {', '.join(f'{x:.2f}' for x in ratios)}; goal <= 0.5), "
              f"best-value difference {statistics.fmean(diffs):+.2f} pp (each: {', '.join(f'{x:+.2f}' for x in diffs)}; "
              "goal <= 0.3 pp)")
    share = max(r["overhead"] for r in rows) / min(r["trial_mean"] for r in rows)
    print(f"sweeper overhead per trial / mean trial time: {100 * share:.1f} % (goal < 5 %)")


if __name__ == "__main__":
    main()
