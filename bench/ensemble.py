"""K same-architecture members as archfuse runs them, against a plain Python loop over the K models.

Inference: archfuse's ensemble network (built by archfuse.build from ``ensemble=mean ensemble.size=K
model=seed003``: the members' logits, fused into one computation by archfuse.ensembles.fused at batch 1
and looped over above it, probabilities averaged) against a loop over the same K modules doing the same
averaging; and, for reference, the same K members fused by hand into grouped convolutions and batched
matmuls at every batch size (bench only). Training: one step of the K members trained together
(archfuse's ``Ensemble.training_loss``: the sum of the members' own losses, one Adam over all of them)
against K separate steps, each model with its own Adam. All in one process, the same threads, sides
alternating each round; figures are medians of per-round times, ratios archfuse/loop (< 1: archfuse faster).

    python bench/ensemble.py                  # K=5, batch 1 and 256, 1 thread
    python bench/ensemble.py --members 3 --threads 2
"""

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F
from torch import nn


def compose(k: int, model: str) -> dict:
    from hydra import compose as hydra_compose, initialize_config_dir
    from omegaconf import OmegaConf

    from archfuse.config_dir import config_dir

    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        cfg = hydra_compose("train", overrides=[f"model={model}", "ensemble=mean", f"ensemble.size={k}",
                                                "paths.output_dir=/tmp", "paths.run_dir=/tmp/run"])
    return OmegaConf.to_container(cfg, resolve=True)


class FusedSeed003(nn.Module):
    """K Seed003 members as one network: their first convolutions concatenated (the input is shared),
    the second as a grouped convolution, the fc layers as batched matmuls. Same numbers as the loop."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        k = len(members)
        c1 = [m.features[0] for m in members]
        c2 = [m.features[3] for m in members]
        fc1 = [m.classifier[1] for m in members]
        fc2 = [m.classifier[3] for m in members]
        self.k = k
        self.conv1 = nn.Conv2d(1, 32 * k, 3, padding=1)
        self.conv2 = nn.Conv2d(32 * k, 64 * k, 3, padding=1, groups=k)
        with torch.no_grad():
            self.conv1.weight.copy_(torch.cat([c.weight for c in c1]))
            self.conv1.bias.copy_(torch.cat([c.bias for c in c1]))
            self.conv2.weight.copy_(torch.cat([c.weight for c in c2]))
            self.conv2.bias.copy_(torch.cat([c.bias for c in c2]))
        self.w1 = nn.Parameter(torch.stack([f.weight.T for f in fc1]).detach().clone())  # K x 3136 x 128
        self.b1 = nn.Parameter(torch.stack([f.bias for f in fc1])[:, None].detach().clone())
        self.w2 = nn.Parameter(torch.stack([f.weight.T for f in fc2]).detach().clone())
        self.b2 = nn.Parameter(torch.stack([f.bias for f in fc2])[:, None].detach().clone())

    def member_logits(self, x: torch.Tensor) -> torch.Tensor:
        h = F.max_pool2d(F.relu(self.conv1(x)), 2)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2)  # N x 64K x 7 x 7
        n = len(x)
        h = h.view(n, self.k, -1).transpose(0, 1)  # K x N x 3136 (each member's own flatten order)
        h = F.relu(torch.baddbmm(self.b1, h, self.w1))
        return torch.baddbmm(self.b2, h, self.w2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.member_logits(x).softmax(-1).mean(0).log()


def timed(fn, repeats: int) -> float:
    """Median ms of ``fn()`` over ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def inference(net, members, fused, batch: int, rounds: int, repeats: int) -> dict[str, float]:
    x = torch.randn(batch, 1, 28, 28)

    def loop():
        return torch.stack([m(x) for m in members]).softmax(-1).mean(0).log()

    sides = {"archfuse": lambda: net(x), "loop": loop}
    if fused is not None:
        sides["fused"] = lambda: fused(x)
    with torch.inference_mode():
        ref = loop()
        assert torch.allclose(net(x), ref, atol=1e-4)
        if fused is not None:
            assert torch.allclose(fused(x), ref, atol=1e-4)
        for fn in sides.values():  # warm-up
            for _ in range(3):
                fn()
        rows = {name: [] for name in sides}
        for r in range(rounds):
            names = list(sides) if r % 2 == 0 else list(reversed(sides))
            for name in names:
                rows[name].append(timed(sides[name], repeats))
    return {name: statistics.median(v) for name, v in rows.items()}


def training(net, strategy, members, batch: int, rounds: int, repeats: int) -> dict[str, float]:
    x, y = torch.randn(batch, 1, 28, 28), torch.randint(0, 10, (batch,))
    criterion = nn.CrossEntropyLoss()
    together = torch.optim.Adam(net.parameters(), lr=1e-3)
    separate = [torch.optim.Adam(m.parameters(), lr=1e-3) for m in members]

    def step_together():
        together.zero_grad(set_to_none=True)
        loss, _ = strategy.training_loss(net, (x, y), criterion)
        loss.backward()
        together.step()

    def step_separate():
        for m, opt in zip(members, separate):
            opt.zero_grad(set_to_none=True)
            criterion(m(x), y).backward()
            opt.step()

    sides = {"archfuse": step_together, "loop": step_separate}
    net.train()
    for m in members:
        m.train()
    for fn in sides.values():
        for _ in range(2):
            fn()
    rows = {name: [] for name in sides}
    for r in range(rounds):
        for name in (list(sides) if r % 2 == 0 else list(reversed(sides))):
            rows[name].append(timed(sides[name], repeats))
    return {name: statistics.median(v) for name, v in rows.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=5)
    parser.add_argument("--model", default="seed003")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--train-batch", type=int, default=64)
    args = parser.parse_args()
    from archfuse.host import host_line

    print(host_line(), flush=True)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    from archfuse.build import build_network

    config = compose(args.members, args.model)
    network = build_network(config, (1, 28, 28), 10)
    net, strategy = network.net.eval(), network.ensemble
    members = [m.eval() for m in net.members]  # the very same modules: the loop runs identical weights
    loop_members = copy.deepcopy(members)  # separate copies for the training comparison
    fused = FusedSeed003(members).eval() if args.model == "seed003" else None

    print(f"K={args.members} x {args.model}, {args.threads} thread(s), torch {torch.__version__}, "
          f"medians of {args.rounds} alternating rounds; ratio = side / loop (< 1: faster than the loop)")
    print(f"{'inference':<24}{'archfuse ms':>12}{'loop ms':>10}{'ratio':>8}" + (f"{'fused ms':>10}{'ratio':>8}"
                                                                               if fused else ""))
    for batch, repeats in ((1, 200), (256, 5)):
        t = inference(net, members, fused, batch, args.rounds, repeats)
        line = f"{'batch ' + str(batch):<24}{t['archfuse']:>12.3f}{t['loop']:>10.3f}{t['archfuse'] / t['loop']:>8.2f}"
        if fused:
            line += f"{t['fused']:>10.3f}{t['fused'] / t['loop']:>8.2f}"
        print(line)
    t = training(net, strategy, loop_members, args.train_batch, args.rounds, 5)
    print(f"{'training step, batch ' + str(args.train_batch):<24}{t['archfuse']:>12.3f}{t['loop']:>10.3f}"
          f"{t['archfuse'] / t['loop']:>8.2f}   (K together, one Adam / K separate steps)")


if __name__ == "__main__":
    main()
