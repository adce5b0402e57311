"""What batch-level augmentation costs: the transform of one training epoch against the epoch itself.

One process, seed000 on the digits' training split (batch 64, the digits config's split), at one
precision (``--precision``: 32-true, or bf16-mixed under bf16 autocast), named in the header with the
host's CPU features. Each round times, in
alternating order, a training epoch without augmentation, the same epoch with ``data.augment=affine``
(and ``shift``), and the augmentation calls of an epoch alone; the medians and their ratios are printed.

    python bench/augment.py --rounds 7 --threads 2
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from omegaconf import OmegaConf  # noqa: E402

from archfuse.build import build_datamodule  # noqa: E402
from archfuse.config_dir import config_dir  # noqa: E402
from archfuse.data.augment import BatchAugment  # noqa: E402
from archfuse.models.seed000 import Seed000  # noqa: E402
from archfuse.host import host_line  # noqa: E402


def digits():
    node = OmegaConf.to_container(OmegaConf.load(Path(config_dir()) / "data" / "digits.yaml"))
    dm = build_datamodule({"data": {**node, "augment": "none"}})
    dm.setup()
    return dm


def epoch(net, opt, x, y, batch, augment: BatchAugment | None, blank, g, bf16: bool) -> float:
    start = time.perf_counter()
    for idx in torch.randperm(len(y), generator=g).split(batch):
        xb = x[idx] if augment is None else augment(x[idx], g, blank)
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(net(xb).float(), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def transforms_only(x, batch, augment: BatchAugment, blank, g) -> float:
    start = time.perf_counter()
    for idx in torch.randperm(len(x), generator=g).split(batch):
        augment(x[idx], g, blank)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--precision", choices=("32-true", "bf16-mixed"), default="32-true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dm = digits()
    x, y = dm.split_tensors("train")
    blank, bf16 = dm._blank, args.precision == "bf16-mixed"
    print(host_line())
    kinds = {"affine": BatchAugment("affine", 0.1, 10.0, 0.1, 5.0), "shift": BatchAugment("shift", 0.1, 10.0, 0.1, 5.0)}
    torch.manual_seed(0)
    net = Seed000(1, 10, (28, 28))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    epoch(net, opt, x, y, args.batch, None, blank, g, bf16)  # warm-up: allocations, kernels
    times: dict[str, list[float]] = {"plain": [], **{f"epoch+{k}": [] for k in kinds}, **{k: [] for k in kinds}}
    for r in range(args.rounds):
        order = ["plain", *kinds] if r % 2 == 0 else [*kinds, "plain"]
        for name in order:
            if name == "plain":
                times["plain"].append(epoch(net, opt, x, y, args.batch, None, blank, g, bf16))
            else:
                times[f"epoch+{name}"].append(epoch(net, opt, x, y, args.batch, kinds[name], blank, g, bf16))
                times[name].append(transforms_only(x, args.batch, kinds[name], blank, g))
    plain = statistics.median(times["plain"])
    print(f"seed000, digits train split ({len(y)} images, batch {args.batch}), {args.threads} threads, "
          f"{'bf16 autocast' if bf16 else 'fp32'}, {args.rounds} rounds (medians)")
    print(f"training epoch, no augmentation:       {plain:.3f} s")
    for name in kinds:
        with_aug, alone = statistics.median(times[f"epoch+{name}"]), statistics.median(times[name])
        ratios = [a / p for a, p in zip(times[f"epoch+{name}"], times["plain"], strict=True)]
        print(f"training epoch with {name:<7}            {with_aug:.3f} s   ratio {statistics.median(ratios):.3f}")
        print(f"{name} transforms of one epoch alone:   {alone:.3f} s   = {100 * alone / plain:.1f}% of the epoch")


if __name__ == "__main__":
    main()
