"""Static int8 (recipe=quantize) against fp32, eager and compiled, side by side in one process on CPU.

Trains the seed000 CNN with ``recipe=quantize`` through the real CLI (on the real MNIST split of
bench/prepare_mnist.py when ../shared/data/mnist-t10k is there, else
on the digits), then reloads both of the run's checkpoints as archfuse-eval does: best.ckpt (fp32) and
final.ckpt (int8, rebuilt from its saved calibration state). Test accuracy, size and the median CPU
latency (and the fastest pass) at batch 1 and 256 of eager fp32, fp32 compiled by Inductor (freezing on) and compiled int8.

    python bench/quantize.py [--epochs 3] [--threads 2] [--repeats 20] [--workdir DIR]

On a machine whose cores are busy with other work, multi-threaded passes wait at OpenMP barriers and
every variant slows by 10-50x (batch 1 in tens of ms): compare with --threads 1, or on an idle machine.

Goals (issue 7): int8 >= 4x faster than compiled fp32 at batch 256, >= 3.5x smaller, <= 0.3 pp drop.
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

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))
# ../shared/data/mnist-t10k beside the main checkout (and beside a worktree's parent folder)
MNIST_SOURCES = [REPO.parent / "shared" / "data" / "mnist-t10k", REPO.parent.parent / "shared" / "data" / "mnist-t10k"]


def train(workdir: Path, epochs: int, threads: int) -> dict:
    """One archfuse-train run: seed000 + recipe=quantize (static); its summary.json."""
    workdir.mkdir(parents=True, exist_ok=True)
    src = next((p for p in MNIST_SOURCES if (p / "t10k-images-idx3-ubyte.gz").is_file()), None)
    if src is not None:
        from prepare_mnist import prepare

        prepare(src, workdir / "mnist")
        data = ["data=mnist", f"data.root={workdir / 'mnist'}"]
    else:
        data = ["data=digits"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(REPO / "src")}
    cmd = [sys.executable, "-m", "archfuse.train", *data, "model=seed000", "recipe=quantize", "quiet=true",
           f"trainer.max_epochs={epochs}", f"trainer.num_threads={threads}"]
    print("run:", " ".join(cmd[2:]), flush=True)
    subprocess.run(cmd, cwd=workdir, env=env, check=True)
    (path,) = (workdir / "outputs").rglob("summary.json")
    return json.loads(path.read_text())


def latencies(variants: dict, x, repeats: int, warmup: int = 5) -> dict[str, tuple[float, float]]:
    """(median, min) wall time in ms of one forward pass per variant. The variants take turns within each
    repeat, so a busy machine slows them alike; the minimum is the least disturbed pass."""
    times: dict[str, list[float]] = {name: [] for name in variants}
    with torch.inference_mode():
        for net in variants.values():
            for _ in range(warmup):
                net(x)
        for _ in range(repeats):
            for name, net in variants.items():
                start = time.perf_counter()
                net(x)
                times[name].append((time.perf_counter() - start) * 1000)
    return {name: (statistics.median(t), min(t)) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--workdir", type=Path, help="keep the run here; a run already there is reused (no training)")
    args = parser.parse_args()
    from archfuse.host import host_line

    print(host_line(), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        done = sorted((workdir / "outputs").rglob("summary.json")) if args.workdir else []
        s = json.loads(done[-1].read_text()) if done else train(workdir, args.epochs, args.threads)
        from archfuse.build import build_datamodule, module_from_checkpoint
        from archfuse.cost import size_bytes
        from archfuse.evaluation import split_metrics

        torch.set_num_threads(args.threads)
        fp32 = module_from_checkpoint(s["best_checkpoint"]).net.eval()
        int8 = module_from_checkpoint(s["checkpoint"]).net.eval()
        dm = build_datamodule(s["config"])
        x_test, _ = dm.split_tensors("test")
        variants = {"fp32 eager": fp32, "fp32 compiled": Compiled(fp32), "int8 static (compiled)": int8}
        rows = {name: {"acc": split_metrics(net, dm, "test")["acc"],  # the first call compiles
                       "size": size_bytes(int8 if name.startswith("int8") else fp32)} for name, net in variants.items()}
        for b in (1, 256):
            for name, (median, fastest) in latencies(variants, x_test[:b].contiguous(), args.repeats).items():
                rows[name][b], rows[name][f"min{b}"] = median, fastest
    print(f"data: {s['config']['data']['_target_'].rsplit('.', 1)[-1]}, {dm.split_size('train')} train / "
          f"{dm.split_size('test')} test images; seed000, {args.epochs} epochs; CPU, {args.threads} threads; "
          f"median and min of {args.repeats}, variants interleaved")
    print(f"run: fp32 test/acc {s['recipe'][0]['before']['test/acc']:.4f} -> int8 {s['metrics']['test/acc']:.4f} "
          f"(summary.json); final checkpoint reloaded: {rows['int8 static (compiled)']['acc']:.4f}")
    print(f"{'variant':<24} {'test acc':>8} {'size MiB':>9} {'b1 ms':>8} {'b1 min':>8} {'b256 ms':>9} {'b256 min':>9}")
    for name, r in rows.items():
        print(f"{name:<24} {r['acc']:>8.4f} {r['size'] / 2**20:>9.2f} {r[1]:>8.3f} {r['min1']:>8.3f} {r[256]:>9.2f} "
              f"{r['min256']:>9.2f}")
    q, c, e = rows["int8 static (compiled)"], rows["fp32 compiled"], rows["fp32 eager"]
    for b in (1, 256):
        print(f"batch {b}: int8 {c[b] / q[b]:.2f}x (min: {c[f'min{b}'] / q[f'min{b}']:.2f}x) vs compiled fp32, "
              f"{e[b] / q[b]:.2f}x (min: {e[f'min{b}'] / q[f'min{b}']:.2f}x) vs eager fp32; "
              f"compiled fp32 {e[b] / c[b]:.2f}x vs eager")
    goals = [(f"speed at batch 256 vs compiled fp32 {c[256] / q[256]:.2f}x", c[256] / q[256] >= 4),
             (f"size {e['size'] / q['size']:.2f}x smaller", e["size"] / q["size"] >= 3.5),
             (f"accuracy drop {100 * (e['acc'] - q['acc']):.2f} pp", 100 * (e["acc"] - q["acc"]) <= 0.3)]
    for text, met in goals:
        print(f"goal {'met' if met else 'MISSED'}: {text}")


class Compiled(torch.nn.Module):
    """fp32 the fastest way torch offers here: Inductor with freezing (weights as constants, prepacked
    oneDNN kernels)."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.__dict__["compiled"] = torch.compile(net)

    def forward(self, x):
        with torch._inductor.config.patch(freezing=True):
            return self.compiled(x)


if __name__ == "__main__":
    main()
