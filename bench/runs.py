"""Whole runs against a hand-written script doing the same work, timed side by side in one run.

A user pays for the whole run, not just its epochs. Each side is a fresh process started by this
script (interpreter, imports, data, training, test, everything), alternating plain/archfuse and
archfuse/plain so the noise of a shared machine falls on both alike; the result is the median of the
per-round ratios archfuse/plain.

- ``single``: ``archfuse-train`` (seed000 on the digits, ``--epochs`` epochs) against a script that does
  the same work in plain PyTorch: the same data module and split, the same initial weights (seeded),
  validation every epoch, the best weights kept and saved to disk, the best weights tested.
- ``sweep``: ``archfuse-train -m model=seed001 seed=1,...,5`` (5 jobs) against one script process
  doing the same 5 runs in a loop.

Inside the archfuse side a callback (``+callbacks.bench_stamps._target_=bench.runs.Stamps``) stamps
the phases, so the breakdown of what remains over the plain side is printed: start-up to fit, the
epochs, the checkpoint writes, the test, and what follows the test (cost, TensorBoard, summary.json).

    python bench/runs.py --mode single --rounds 5
    python bench/runs.py --mode sweep --rounds 3
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
def plain_run(model: str, seed: int, epochs: int, out: Path) -> float:
    """The same work as archfuse-train's defaults: the digits config's split and augmentation, Adam with the
    cosine schedule, bf16 autocast where the CPU computes it natively, the best (ties: latest) weights on
    validation saved and tested."""
    import torch
    import torch.nn.functional as F
    from omegaconf import OmegaConf

    from archfuse.config_dir import config_dir
    from archfuse.data.digits import DigitsDataModule
    from archfuse.models.seed000 import Seed000
    from archfuse.models.seed001 import Seed001
    from archfuse.scheduler import warmup_cosine
    from archfuse.trainer import native_bf16

    dm = DigitsDataModule(**{k: v for k, v in OmegaConf.load(Path(config_dir()) / "data" / "digits.yaml").items()
                             if k != "_target_"})
    xtr, ytr = dm.split_tensors("train")
    xva, yva = dm.split_tensors("val")
    xte, yte = dm.split_tensors("test")
    torch.manual_seed(seed)
    net = {"seed000": Seed000, "seed001": Seed001}[model](1, 10, (28, 28))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    schedule = warmup_cosine(opt, warmup_epochs=0, final_lr_ratio=0.0, fit_epochs=epochs)
    bf16 = native_bf16("cpu")

    def accuracy(x, y):
        net.eval()
        with torch.no_grad(), torch.autocast("cpu", torch.bfloat16, enabled=bf16):
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
    for seed in args.seeds:
        plain_run(args.model, seed, args.epochs, out)


# -- driver ---------------------------------------------------------------------------------------------
def child_env(threads: int) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(REPO)}
    env.pop("ARCHFUSE_BENCH_STAMPS", None)
    return env


def timed(cmd: list[str], env: dict[str, str], cwd: str) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start


def phases(stamp_file: Path, start: float, end: float) -> dict[str, float]:
    """Seconds per phase of the archfuse side, from its stamps."""
    rows = [line.split() for line in stamp_file.read_text().splitlines()]
    t = [(name, float(value)) for name, value in rows]
    first = lambda n: next(v for k, v in t if k == n)  # noqa: E731
    last = lambda n: [v for k, v in t if k == n][-1]  # noqa: E731
    out = {"start-up to fit (interpreter, imports, compose, validate, build)": first("fit_start") - start}
    # Lightning validates inside the training epoch: epoch_start -> val_start is the training part.
    pairs = list(zip(t, t[1:], strict=False))
    epochs = sum(b - a for (ka, a), (kb, b) in pairs if ka == "epoch_start" and kb == "val_start")
    vals = sum(b - a for (ka, a), (kb, b) in pairs if ka == "val_start" and kb == "val_end")
    out["training epochs (batches)"] = epochs
    out["validation"] = vals
    out["fit: the rest (checkpoint writes, loops, logging)"] = last("fit_end") - first("fit_start") - epochs - vals
    out["after fit, before test (after-fit steps, best weights)"] = first("test_start") - last("fit_end")
    out["test"] = last("test_end") - first("test_start")
    out["after test (cost, TensorBoard, summary.json, exit)"] = end - last("test_end")
    out["checkpoint writes (count)"] = sum(1 for k, _ in t if k == "checkpoint")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("single", "sweep"), default="single")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)  # the plain side's process
    parser.add_argument("--model", default="seed000", help=argparse.SUPPRESS)
    parser.add_argument("--seeds", type=int, nargs="*", default=[42], help=argparse.SUPPRESS)
    parser.add_argument("--out", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain:
        return plain_main(args)

    model, seeds = ("seed000", [42]) if args.mode == "single" else ("seed001", [1, 2, 3, 4, 5])
    env = child_env(args.threads)
    ratios, sides, breakdowns = [], {"plain": [], "archfuse": []}, []
    with tempfile.TemporaryDirectory() as tmp:
        plain_cmd = [sys.executable, __file__, "--plain", "--model", model, "--epochs", str(args.epochs),
                     "--threads", str(args.threads), "--out", tmp, "--seeds", *map(str, seeds)]
        overrides = [f"model={model}", f"trainer.max_epochs={args.epochs}", "quiet=true",
                     f"trainer.num_threads={args.threads}", "+callbacks.bench_stamps._target_=bench.runs.Stamps"]
        if args.mode == "sweep":
            overrides = ["-m", *overrides, "seed=" + ",".join(map(str, seeds))]
        archfuse_cmd = [sys.executable, "-m", "archfuse.train", *overrides]
        for r in range(args.rounds):
            stamp_file = Path(tmp) / f"stamps_{r}.txt"
            af_env = {**env, STAMPS: str(stamp_file)}
            order = ("plain", "archfuse") if r % 2 == 0 else ("archfuse", "plain")
            times = {}
            for side in order:
                if side == "plain":
                    times[side] = timed(plain_cmd, env, tmp)
                else:
                    start = time.time()
                    times[side] = timed(archfuse_cmd, af_env, tmp)
                    if args.mode == "single":
                        breakdowns.append(phases(stamp_file, start, time.time()))
            ratio = times["archfuse"] / times["plain"]
            ratios.append(ratio)
            for side in sides:
                sides[side].append(times[side])
            print(f"round {r}: plain {times['plain']:.2f}s archfuse {times['archfuse']:.2f}s ratio {ratio:.3f} "
                  f"({order[0]} first)", flush=True)
    print(f"\n{args.mode}: median ratio archfuse/plain, whole command wall time: {statistics.median(ratios):.3f} "
          f"(min {min(ratios):.3f}, max {max(ratios):.3f}); plain {statistics.median(sides['plain']):.2f}s, "
          f"archfuse {statistics.median(sides['archfuse']):.2f}s")
    if breakdowns:
        print("archfuse side, median seconds per phase:")
        for key in breakdowns[0]:
            print(f"  {key:60s} {statistics.median(b[key] for b in breakdowns):7.3f}")
    print(json.dumps({"mode": args.mode, "ratios": ratios, "plain_s": sides["plain"], "archfuse_s": sides["archfuse"]}))


if __name__ == "__main__":
    main()
