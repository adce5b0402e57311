"""Whole runs against a hand-written script doing the same work, timed side by side in one run.

A user pays for the whole run, not just its epochs. Each side is a fresh process started by this
script (interpreter, imports, data, training, test, everything), alternating plain/archfuse and
archfuse/plain so the noise of a shared machine falls on both alike; the result is the median of the
per-round ratios archfuse/plain (the minimum is printed too). Both sides train at one precision
(``--precision``, 32-true by default: archfuse's ``trainer.precision``, the plain script's autocast)
with the same threads; the header names the host's CPU features.

- ``single``: ``archfuse-train`` (seed000 on the digits, ``--epochs`` epochs) against a script that does
  the same work in plain PyTorch: the same data module and split, the same initial weights (seeded),
  validation every epoch, the best weights kept and saved to disk, the best weights tested.
- ``sweep``: ``archfuse-train -m model=seed001 seed=1,...,5`` (5 jobs) against one script process
  doing the same 5 runs in a loop.

Inside the archfuse side a callback (``+callbacks.bench_stamps._target_=bench.runs.Stamps``) stamps
the phases, so the breakdown of what remains over the plain side is printed: start-up to fit, the
epochs, validation, the checkpoint writes, the test, and what follows the test (cost, TensorBoard,
summary.json); in sweep mode per job, with what lies between one job's test and the next job's fit.
``--profile`` runs the archfuse command once under cProfile instead and prints seconds per job by
function (Hydra's config and its save, validation, data, Trainer, evaluation loop, test, cost, files).
``--compare-src DIR`` adds a third side to every round: the archfuse of another checkout (before a change).

    python bench/runs.py --mode single --rounds 5
    python bench/runs.py --mode sweep --epochs 10 --rounds 3
    python bench/runs.py --mode sweep --epochs 10 --rounds 3 --precision bf16-mixed
    python bench/runs.py --mode sweep --epochs 10 --profile
    python bench/runs.py --mode sweep --epochs 10 --rounds 4 --compare-src /tmp/before   # git archive of the old code
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STAMPS = "ARCHFUSE_BENCH_STAMPS"


class Stamps:
    """A Lightning callback in duck type, made a real one when built (importing this module is cheap):
    appends (phase, time.time()) lines to the file named by $ARCHFUSE_BENCH_STAMPS."""

    def __new__(cls, *args, **kwargs):
        from lightning.pytorch import Callback

        def stamp(name: str) -> None:
            with open(os.environ[STAMPS], "a") as f:
                f.write(f"{name} {time.time()}\n")

        class _Stamps(Callback):
            def on_fit_start(self, trainer, pl_module):
                stamp("fit_start")

            def on_train_epoch_start(self, trainer, pl_module):
                stamp("epoch_start")

            def on_train_epoch_end(self, trainer, pl_module):
                stamp("train_epoch_end")

            def on_validation_start(self, trainer, pl_module):
                stamp("val_start")

            def on_validation_end(self, trainer, pl_module):
                stamp("val_end")

            def on_save_checkpoint(self, trainer, pl_module, checkpoint):
                stamp("checkpoint")

            def on_fit_end(self, trainer, pl_module):
                stamp("fit_end")

            def on_test_start(self, trainer, pl_module):
                stamp("test_start")

            def on_test_end(self, trainer, pl_module):
                stamp("test_end")

        return _Stamps()


# -- the plain side: a hand-written script doing the same work ----------------------------------------
def plain_run(model: str, seed: int, epochs: int, out: Path, precision: str) -> float:
    """The same work as archfuse-train's defaults: the digits config's split and augmentation, Adam with the
    cosine schedule, the training forward and loss under bf16 autocast at bf16-mixed (as Lightning's), every
    evaluation in fp32 (as archfuse's), the best (ties: latest) weights on validation saved and tested."""
    import torch
    import torch.nn.functional as F
    from omegaconf import OmegaConf

    from archfuse.config_dir import config_dir
    from archfuse.data.digits import DigitsDataModule
    from archfuse.models.seed000 import Seed000
    from archfuse.models.seed001 import Seed001
    from archfuse.scheduler import warmup_cosine

    dm = DigitsDataModule(**{k: v for k, v in OmegaConf.load(Path(config_dir()) / "data" / "digits.yaml").items()
                             if k != "_target_"})
    xtr, ytr = dm.split_tensors("train")
    xva, yva = dm.split_tensors("val")
    xte, yte = dm.split_tensors("test")
    torch.manual_seed(seed)
    net = {"seed000": Seed000, "seed001": Seed001}[model](1, 10, (28, 28))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    schedule = warmup_cosine(opt, warmup_epochs=0, final_lr_ratio=0.0, fit_epochs=epochs)
    bf16 = precision == "bf16-mixed"

    def accuracy(x, y):
        net.eval()
        with torch.no_grad():
            acc = sum(int((net(x[i:i + 512]).argmax(1) == y[i:i + 512]).sum()) for i in range(0, len(y), 512))
        net.train()
        return acc / len(y)

    best, best_state = -1.0, None
    for epoch in range(epochs):
        g = torch.Generator().manual_seed(epoch)
        for idx in torch.randperm(len(ytr), generator=g).split(64):
            x = dm.augment(xtr[idx], g, dm._blank)
            with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
                loss = F.cross_entropy(net(x).float(), ytr[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        schedule.step()
        acc = accuracy(xva, yva)
        if acc >= best:
            best, best_state = acc, {k: v.clone() for k, v in net.state_dict().items()}
            torch.save(best_state, out / f"best_{model}_{seed}.pt")
    net.load_state_dict(best_state)
    return accuracy(xte, yte)


def plain_main(args) -> None:
    import torch

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    import archfuse.data.digits  # noqa: F401  (what plain_run imports: lightning.pytorch through the data module)
    import archfuse.models.seed001  # noqa: F401
    import archfuse.scheduler  # noqa: F401

    print(f"plain_ready {time.time()}")  # after the imports
    for seed in args.seeds:
        plain_run(args.model, seed, args.epochs, out, args.precision)
        print(f"plain_job {time.time()}")


# -- driver ---------------------------------------------------------------------------------------------
def child_env(threads: int) -> dict[str, str]:
    # This checkout's archfuse (src/) and bench/ (the stamps callback), whatever the environment installed.
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": os.pathsep.join((str(REPO / "src"), str(REPO)))}
    env.pop("ARCHFUSE_BENCH_STAMPS", None)
    return env


def timed(cmd: list[str], env: dict[str, str], cwd: str) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start, proc.stdout


def plain_phases(stdout: str, start: float, end: float) -> dict[str, float]:
    """The plain side's start-up (interpreter, imports) and its mean seconds per job."""
    t = [(k, float(v)) for k, v in (line.split() for line in stdout.splitlines() if line.startswith("plain_"))]
    ready = next(v for k, v in t if k == "plain_ready")
    jobs = [v for k, v in t if k == "plain_job"]
    return {"start-up (interpreter, imports: torch, lightning through the data module)": ready - start,
            "per job (data, training, validation, test)": (jobs[-1] - ready) / len(jobs),
            "after the last job (exit)": end - jobs[-1]}


def fit_parts(t: list[tuple[str, float]]) -> tuple[float, float, float]:
    """Seconds of training batches, of validation loops and of checkpoint writes in stamps ``t``. Lightning
    validates inside the training epoch (epoch_start -> val_start is the training part), and ModelCheckpoint
    saves in on_validation_end before the stamps callback's: val_start -> the first checkpoint stamp is the
    validation loop, the checkpoint stamp -> val_end the writes (best.ckpt, last.ckpt)."""
    epochs = vals = writes = 0.0
    for i, (name, at) in enumerate(t):
        if name == "epoch_start":
            epochs += next(v for k, v in t[i + 1:] if k in ("val_start", "train_epoch_end")) - at
        elif name == "val_start":
            end = next(v for k, v in t[i + 1:] if k == "val_end")
            saved = next((v for k, v in t[i + 1:] if k in ("checkpoint", "val_end")), end)
            vals += saved - at
            writes += end - saved
    return epochs, vals, writes


def phases(stamp_file: Path, start: float, end: float) -> dict[str, float]:
    """Seconds per phase of the archfuse side, from its stamps."""
    rows = [line.split() for line in stamp_file.read_text().splitlines()]
    t = [(name, float(value)) for name, value in rows]
    first = lambda n: next(v for k, v in t if k == n)  # noqa: E731
    last = lambda n: [v for k, v in t if k == n][-1]  # noqa: E731
    out = {"start-up to fit (interpreter, imports, compose, validate, build)": first("fit_start") - start}
    epochs, vals, writes = fit_parts(t)
    out["training epochs (batches)"] = epochs
    out["validation (sanity check and every epoch)"] = vals
    out["checkpoint writes (best.ckpt, last.ckpt)"] = writes
    out["fit: the rest (loops, logging)"] = last("fit_end") - first("fit_start") - epochs - vals - writes
    out["after fit, before test (after-fit steps, best weights)"] = first("test_start") - last("fit_end")
    out["test"] = last("test_end") - first("test_start")
    out["after test (cost, TensorBoard, summary.json, exit)"] = end - last("test_end")
    out["checkpoint writes (count)"] = sum(1 for k, _ in t if k == "checkpoint")
    return out


BETWEEN = "test end -> next fit (cost, TB, summary; next config, validate, Trainer)"


def sweep_phases(stamp_file: Path, start: float, end: float) -> dict[str, float]:
    """Seconds per phase of a multirun's archfuse side: start-up to the first job's fit, then per job (mean
    over the jobs) each phase of its fit, and what lies between one job's test and the next job's fit (the
    job's cost, TensorBoard, summary.json; the next job's Hydra config, validation, build, Trainer)."""
    t = [(k, float(v)) for k, v in (line.split() for line in stamp_file.read_text().splitlines())]
    starts = [i for i, (k, _) in enumerate(t) if k == "fit_start"]
    jobs = [t[i:j] for i, j in zip(starts, [*starts[1:], len(t)], strict=True)]
    n = len(jobs)
    rows = dict.fromkeys(("training epochs (batches)", "validation (sanity check and every epoch)",
                          "checkpoint writes (best.ckpt, last.ckpt)", "fit: the rest (loops, logging)",
                          "after fit, before test (best weights)", "test", BETWEEN), 0.0)
    test_end = 0.0
    for j, job in enumerate(jobs):
        get = [(k, v) for k, v in job]
        first = lambda name: next(v for k, v in get if k == name)  # noqa: E731
        last = lambda name: [v for k, v in get if k == name][-1]  # noqa: E731
        epochs, vals, writes = fit_parts(job)
        rows["training epochs (batches)"] += epochs
        rows["validation (sanity check and every epoch)"] += vals
        rows["checkpoint writes (best.ckpt, last.ckpt)"] += writes
        rows["fit: the rest (loops, logging)"] += last("fit_end") - job[0][1] - epochs - vals - writes
        rows["after fit, before test (best weights)"] += first("test_start") - last("fit_end")
        rows["test"] += last("test_end") - first("test_start")
        if j > 0:
            rows[BETWEEN] += job[0][1] - test_end
        test_end = last("test_end")
    out = {"start-up to the first fit (interpreter, imports, compose, validate, build)": t[0][1] - start}
    out.update({f"per job: {k}": v / max(n - 1, 1) if k == BETWEEN else v / n for k, v in rows.items()})
    out["after the last test (cost, TensorBoard, summary.json, exit)"] = end - test_end
    return out


def profile_child(args) -> None:
    """One archfuse command in this process under cProfile (the archfuse side of ``--profile``): per-job
    inclusive seconds of the functions a job's time goes to, each divided by the number of jobs."""
    import cProfile
    import pstats

    import torch

    from archfuse import train

    torch.set_num_threads(args.threads)
    sys.argv = ["archfuse-train", *args.archfuse_args]
    # What the first job would import, imported before the profile starts: the per-job lines are the jobs'.
    started = time.perf_counter()
    import archfuse.report  # noqa: F401
    import archfuse.run.job  # noqa: F401
    import archfuse.sweep.trial  # noqa: F401
    import torch.utils.tensorboard  # noqa: F401
    imports = time.perf_counter() - started
    prof = cProfile.Profile()
    prof.enable()
    try:
        train.main(fast_exit=False)
    finally:
        prof.disable()
    stats = pstats.Stats(prof).stats
    jobs = len(args.seeds)
    found: dict[str, float] = {}
    for (file, _, func), (_, _, _, cumulative, _) in stats.items():
        for label, (suffix, name) in PROFILED.items():
            if func == name and file.replace(os.sep, "/").endswith(suffix):
                found[label] = found.get(label, 0.0) + cumulative
    print(f"cProfile of the archfuse side (the profiler inflates Python-heavy parts); {imports:.2f} s of imports "
          f"(lightning, archfuse.run) before it started; inclusive seconds, the import line for the process, every "
          f"other line per job ({jobs} jobs):")
    for label in PROFILED:
        if label in found:
            per = found[label] if label.startswith("imports") else found[label] / jobs
            print(f"  {per:8.3f}s  {label}")


# Inclusive time of these functions (file suffix, function name): where a job's time goes.
PROFILED = {
    "imports (the process, all jobs, under the profile)": ("<frozen importlib._bootstrap>", "_find_and_load"),
    "Hydra: the job (run_job: config, .hydra/ save, logging, the task)": ("hydra/core/utils.py", "run_job"),
    "Hydra: compose the job's config (load_sweep_config)": ("hydra/_internal/config_loader_impl.py",
                                                            "load_sweep_config"),
    "Hydra: save .hydra/config.yaml, hydra.yaml, overrides.yaml (_save_config)": ("hydra/core/utils.py",
                                                                                 "_save_config"),
    "Hydra: logging set-up (configure_log)": ("hydra/core/utils.py", "configure_log"),
    "archfuse job (run_job)": ("archfuse/run/job.py", "run_job"),
    "  validate (schemas, data module, module, check_forward)": ("archfuse/validate.py", "validate"),
    "  data set-up (load_arrays, normalise, split)": ("archfuse/data/datamodule.py", "setup"),
    "  load the digits (load_arrays)": ("archfuse/data/digits.py", "load_arrays"),
    "  build_trainer (Trainer, logger, callbacks)": ("archfuse/trainer.py", "build_trainer"),
    "  Trainer.fit": ("lightning/pytorch/trainer/trainer.py", "fit"),
    "    evaluation loop (sanity check, validation every epoch)": ("lightning/pytorch/loops/evaluation_loop.py",
                                                                   "run"),
    "    checkpoint writes (Trainer.save_checkpoint)": ("lightning/pytorch/trainer/trainer.py", "save_checkpoint"),
    "    TensorBoard SummaryWriter start (logger.experiment)": ("lightning/fabric/loggers/tensorboard.py",
                                                             "experiment"),
    "  best weights (load_weights)": ("archfuse/run/after_fit.py", "load_weights"),
    "  Trainer.test": ("lightning/pytorch/trainer/trainer.py", "test"),
    "  cost (measure_cost)": ("archfuse/cost.py", "measure_cost"),
    "    MACs (count_macs)": ("archfuse/cost.py", "count_macs"),
    "    latency (measure_latency_ms)": ("archfuse/cost.py", "measure_latency_ms"),
    "  confusion matrix picture (log_confusion_matrix)": ("archfuse/report.py", "log_confusion_matrix"),
    "  HPARAMS row (log_hparams)": ("archfuse/report.py", "log_hparams"),
    "  summary.json (write_summary)": ("archfuse/summary/record.py", "write_summary"),
    "  printed summary (print_summary)": ("archfuse/report.py", "print_summary"),
    "  drop last.ckpt (discard_resume_checkpoints)": ("archfuse/run/job.py", "discard_resume_checkpoints"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("single", "sweep"), default="single")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--precision", choices=("32-true", "bf16-mixed"), default="32-true",
                        help="both sides: archfuse's trainer.precision, the plain script's autocast")
    parser.add_argument("--compare-src", default="",
                        help="a third side in every round: the archfuse of another checkout (its src/), e.g. the "
                             "code before a change")
    parser.add_argument("--profile", action="store_true",
                        help="instead of the ratio: one archfuse command under cProfile, seconds per job")
    parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)  # the plain side's process
    parser.add_argument("--profile-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--model", default="seed000", help=argparse.SUPPRESS)
    parser.add_argument("--seeds", type=int, nargs="*", default=[42], help=argparse.SUPPRESS)
    parser.add_argument("--out", default="", help=argparse.SUPPRESS)
    parser.add_argument("archfuse_args", nargs="*", help=argparse.SUPPRESS)  # after --, for --profile-child
    args = parser.parse_args()
    if args.plain:
        return plain_main(args)
    if args.profile_child:
        return profile_child(args)

    from archfuse.host import host_line

    model, seeds = ("seed000", [42]) if args.mode == "single" else ("seed001", [1, 2, 3, 4, 5])
    env = child_env(args.threads)
    print(host_line())
    print(f"precision: {args.precision} on both sides; {args.threads} threads; {args.mode}: {len(seeds)} job(s) of "
          f"{model}, {args.epochs} epochs on the digits", flush=True)
    names = ["plain", "archfuse", *(["before"] if args.compare_src else [])]
    times = {side: [] for side in names}
    breakdowns = {side: [] for side in names}
    with tempfile.TemporaryDirectory() as tmp:
        plain_cmd = [sys.executable, __file__, "--plain", "--model", model, "--epochs", str(args.epochs),
                     "--threads", str(args.threads), "--precision", args.precision, "--out", tmp,
                     "--seeds", *map(str, seeds)]
        overrides = [f"model={model}", f"trainer.max_epochs={args.epochs}", "quiet=true",
                     f"trainer.precision={args.precision}", f"trainer.num_threads={args.threads}",
                     "+callbacks.bench_stamps._target_=bench.runs.Stamps"]
        if args.mode == "sweep":
            overrides = ["-m", *overrides, "seed=" + ",".join(map(str, seeds))]
        archfuse_cmd = [sys.executable, "-m", "archfuse.train", *overrides]
        envs = {"plain": env, "archfuse": env}
        if args.compare_src:  # another checkout's archfuse (its src/), with this checkout's bench/ for the stamps
            envs["before"] = {**env, "PYTHONPATH": os.pathsep.join((str(Path(args.compare_src) / "src"), str(REPO)))}
        if args.profile:
            cmd = [sys.executable, __file__, "--profile-child", "--threads", str(args.threads), "--seeds",
                   *map(str, seeds), "--", *overrides]
            for side in names[1:]:
                stamps = Path(tmp) / f"stamps_profile_{side}.txt"
                proc = subprocess.run(cmd, env={**envs[side], STAMPS: str(stamps)}, cwd=tmp, capture_output=True,
                                      text=True)
                print(f"== {side}" + (f" ({args.compare_src})" if side == "before" else ""))
                print(proc.stdout[proc.stdout.find("cProfile of"):] if proc.returncode == 0 else proc.stderr[-3000:])
            return None
        split = phases if args.mode == "single" else sweep_phases
        for r in range(args.rounds):
            order = names[r % len(names):] + names[:r % len(names)]  # each side goes first in turn
            if r % 2:
                order = order[::-1]
            for side in order:
                stamp_file = Path(tmp) / f"stamps_{side}_{r}.txt"
                start = time.time()
                if side == "plain":
                    seconds, stdout = timed(plain_cmd, envs[side], tmp)
                    breakdowns[side].append(plain_phases(stdout, start, time.time()))
                else:
                    seconds, _ = timed(archfuse_cmd, {**envs[side], STAMPS: str(stamp_file)}, tmp)
                    breakdowns[side].append(split(stamp_file, start, time.time()))
                times[side].append(seconds)
            line = "  ".join(f"{side} {times[side][-1]:.2f}s" for side in names)
            ratios = "  ".join(f"{side}/plain {times[side][-1] / times['plain'][-1]:.3f}" for side in names[1:])
            print(f"round {r}: {line} | {ratios} ({' -> '.join(order)})", flush=True)
    med = statistics.median
    print()
    for side in names[1:]:
        ratios = [a / b for a, b in zip(times[side], times["plain"], strict=True)]
        label = "archfuse" if side == "archfuse" else f"archfuse at {args.compare_src}"
        print(f"{args.mode} at {args.precision}: ratio {label}/plain, whole command wall time: median "
              f"{med(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f}); plain {med(times['plain']):.2f}s, "
              f"{side} {med(times[side]):.2f}s")
    if args.compare_src:
        pairs = [a / b for a, b in zip(times["archfuse"], times["before"], strict=True)]
        print(f"ratio archfuse/before per round: median {med(pairs):.3f} (min {min(pairs):.3f}, max {max(pairs):.3f})")
    for side in names:
        print(f"{side} side, median seconds per phase:")
        for key in breakdowns[side][0]:
            print(f"  {key:76s} {med(b[key] for b in breakdowns[side]):7.3f}")
    print(json.dumps({"mode": args.mode, "precision": args.precision, "seconds": times}))


if __name__ == "__main__":
    main()
