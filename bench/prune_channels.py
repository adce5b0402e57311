"""Channel pruning against the dense model: the seed000 CNN trained on real MNIST, 50% of its channels
removed (recipe=prune_channels) and fine-tuned, both timed side by side in this one process on CPU.

    python bench/prune_channels.py [--epochs 8] [--fine-tune 3] [--ratio 0.5] [--threads 2]

The MNIST split of bench/prepare_mnist.py (8,000 train / 2,000 test from ../shared/data/mnist-t10k) is
prepared in a temporary folder; without those files the digits data is used and the output says so.
One ``archfuse-train`` run (1 thread, as every run on this machine) trains the dense model, prunes its
best weights and fine-tunes; its summary.json holds both test accuracies. The dense best.ckpt and the
pruned final.ckpt are then reloaded the way archfuse-eval does and timed with ``--threads`` threads at
batch 1 and batch 256, alternating the two models so that both see the same machine load.
Goal (issue 7): >= 2.5x faster, <= 0.5 pp accuracy drop.
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
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))


def train(cwd: Path, overrides: list[str]) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO / "src")}
    subprocess.run([sys.executable, "-m", "archfuse.train", *overrides], cwd=cwd, env=env, check=True,
                   stdout=subprocess.DEVNULL)
    (path,) = (cwd / "outputs").rglob("summary.json")
    return json.loads(path.read_text())


def median_ms(net, x, repeats: int) -> float:
    import torch

    times = []
    with torch.inference_mode():
        for _ in range(repeats):
            start = time.perf_counter()
            net(x)
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def time_side_by_side(nets: dict, input_shape, batch: int, rounds: int, repeats: int) -> dict[str, float]:
    """Median latency of each network, measured in alternating rounds (after a warm-up of each)."""
    import torch

    x = torch.randn(batch, *input_shape)
    for net in nets.values():
        median_ms(net, x, 3)
    samples = {name: [] for name in nets}
    for _ in range(rounds):
        for name, net in nets.items():
            samples[name].append(median_ms(net, x, repeats))
    return {name: statistics.median(v) for name, v in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--fine-tune", type=int, default=3)
    parser.add_argument("--ratio", type=float, default=0.5)
    parser.add_argument("--threads", default="2", help="thread counts to time with, e.g. 1,2")
    parser.add_argument("--src", type=Path, default=None, help="folder of the two t10k files")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    from archfuse.host import host_line

    print(host_line(), flush=True)

    from prepare_mnist import DEFAULT_SRC, prepare

    work = Path(tempfile.mkdtemp(prefix="bench_prune_channels_"))
    src = args.src or DEFAULT_SRC
    if (src / "t10k-images-idx3-ubyte.gz").is_file():
        prepare(src, work / "mnist")
        data = ["experiment=seed000_mnist", f"data.root={work / 'mnist'}"]
        data_name = "MNIST (8,000 train / 2,000 test of the real t10k files)"
    else:
        data = ["experiment=seed000_digits"]
        data_name = f"digits ({src} not found: NOT the MNIST figure)"
    overrides = [*data, "seeds=1", "quiet=true", "trainer.num_threads=1", f"trainer.max_epochs={args.epochs}",
                 "recipe=prune_channels", f"recipe.prune_channels.ratio={args.ratio}",
                 f"recipe.prune_channels.fine_tune_epochs={args.fine_tune}"]
    started = time.perf_counter()
    s = train(work, overrides)
    train_s = time.perf_counter() - started
    (step,) = s["recipe"]

    import torch

    from archfuse.build import module_from_checkpoint
    from archfuse.cost import count_macs, count_params, size_bytes

    modules = {"dense": module_from_checkpoint(s["best_checkpoint"]), "pruned": module_from_checkpoint(s["checkpoint"])}
    nets = {name: m.net.eval() for name, m in modules.items()}
    shape = tuple(modules["dense"].input_shape)
    acc = {"dense": step["before"]["test/acc"], "pruned": step["after"]["test/acc"]}

    print(f"data: {data_name}; seed000, {args.epochs} epochs, then {args.ratio:.0%} of the channels removed "
          f"({step['importance']}, {step['scope']}) and {args.fine_tune} fine-tune epochs ({train_s:.0f} s, 1 thread)")
    print(f"command: archfuse-train {' '.join(overrides)}")
    print("channels: " + ", ".join(f"{n} {a}->{b}" for n, (a, b) in step["channels"].items()))
    threads = [int(t) for t in str(args.threads).split(",")]
    print(f"torch {torch.__version__}, CPU, {os.cpu_count()} cores, median of {args.rounds} alternating rounds\n")
    print(f"{'':<22}{'dense':>12}{'pruned':>12}{'ratio':>10}")
    print(f"{'test acc':<22}{acc['dense']:>12.4f}{acc['pruned']:>12.4f}"
          f"{(acc['pruned'] - acc['dense']) * 100:>+9.2f}pp")
    for label, fn in (("params", count_params), ("MACs / sample", lambda n: count_macs(n, shape)),
                      ("size bytes", size_bytes)):
        d, p = fn(nets["dense"]), fn(nets["pruned"])
        print(f"{label:<22}{d:>12,}{p:>12,}{d / p:>9.2f}x")
    speedups = {}
    for n in threads:
        torch.set_num_threads(n)
        for batch, repeats in ((1, 200), (256, 10)):
            ms = time_side_by_side(nets, shape, batch, args.rounds, repeats)
            speedups[n, batch] = ms["dense"] / ms["pruned"]
            label = f"ms, {n} thr, batch {batch}"
            print(f"{label:<22}{ms['dense']:>12.3f}{ms['pruned']:>12.3f}{speedups[n, batch]:>9.2f}x")
    drop = (acc["dense"] - acc["pruned"]) * 100
    print("\ngoal >= 2.5x faster: " + ", ".join(f"{n} thr batch {b} {'met' if v >= 2.5 else 'missed'} ({v:.2f}x)"
                                             for (n, b), v in speedups.items())
          + f"; goal <= 0.5 pp drop: {'met' if drop <= 0.5 else 'missed'} ({drop:+.2f} pp)")


if __name__ == "__main__":
    main()
