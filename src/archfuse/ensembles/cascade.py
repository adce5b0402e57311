"""ensemble=cascade: members ordered by cost (MACs per sample), cheapest first; a sample goes on to the
next member only while the current one's confidence (its top probability) is below the threshold.

The threshold is chosen on the validation predictions after training, for ``target``:
``accuracy_of_last`` (the cheapest cascade whose accuracy is at least the most expensive member's,
less ``tolerance``) or ``max_cost`` (the most accurate cascade whose expected MACs per sample are at most
``max_macs``). Order, MACs and thresholds are the combiner's tensors; in evaluation the network runs
each stage only on the samples still open, so the saving is real.
"""

from typing import Any

import torch
from torch import Tensor, nn

from archfuse.checks import check_number, is_int
from archfuse.context import DataView
from archfuse.ensembles.base import Combiner, CombinerData, EnsembleNet
from archfuse.ensembles.members import MemberEnsemble, accuracy_of
from archfuse.errors import ConfigError

TARGETS = ("accuracy_of_last", "max_cost")
NEVER = 2.0  # a threshold no confidence reaches: every sample goes on


def answering_stage(member_logits: Tensor, order: Tensor, thresholds: Tensor) -> Tensor:
    """For each sample, the stage (position in ``order``) that answers it: the first whose member's top
    probability reaches that stage's threshold; the last stage answers the rest."""
    conf = member_logits.softmax(-1).amax(-1)[order.long()]  # stages x N
    stages = len(order)
    confident = conf[:-1] >= thresholds[:, None] if stages > 1 else conf[:0].bool()
    confident = torch.cat([confident, torch.ones_like(conf[:1], dtype=torch.bool)])
    return confident.float().argmax(0)  # first True


def cascade(member_logits: Tensor, order: Tensor, macs: Tensor, thresholds: Tensor) -> Tensor:
    """The answering stage's log-probabilities, sample by sample."""
    stage = answering_stage(member_logits, order, thresholds)
    logp = member_logits.log_softmax(-1)[order.long()]  # stages x N x C
    return logp.gather(0, stage[None, :, None].expand(1, *logp.shape[1:]))[0]


def expected_macs(stage: Tensor, order: Tensor, macs: Tensor) -> float:
    """Mean MACs per sample: a sample answered at stage s ran stages 0..s."""
    cumulative = macs[order.long()].double().cumsum(0)
    return float(cumulative[stage].mean())


def stage_shares(stage: Tensor, stages: int) -> list[float]:
    return (torch.bincount(stage, minlength=stages).double() / max(len(stage), 1)).tolist()


def latency_per_sample(net: nn.Module, x: Tensor, samples: int = 100) -> float:
    """Mean CPU wall time of the early-exit forward pass of one sample, over the first ``samples`` images."""
    import time

    was = net.training
    net.eval()
    device = next(net.parameters()).device
    times = []
    try:
        with torch.inference_mode():
            net(x[:1].to(device))  # warm-up
            for i in range(min(samples, len(x))):
                xi = x[i:i + 1].to(device)
                start = time.perf_counter()
                net(xi)
                times.append((time.perf_counter() - start) * 1000.0)
    finally:
        net.train(was)
    return sum(times) / max(len(times), 1)


class CascadeNet(EnsembleNet):
    """In training mode all members run (each learns from every sample); in evaluation each stage runs
    only on the samples the earlier stages left open."""

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            return super().forward(x)
        c = self.combiner
        order, thresholds = c.order.long().tolist(), c.thresholds
        out, open_ = None, torch.arange(len(x), device=x.device)
        for s, k in enumerate(order):
            logp = self.members[k](x[open_]).log_softmax(-1)
            if out is None:
                out = logp.new_empty(len(x), logp.shape[-1])
            last = s == len(order) - 1
            done = torch.ones_like(open_, dtype=torch.bool) if last else logp.exp().amax(-1) >= thresholds[s]
            out[open_[done]] = logp[done]
            open_ = open_[~done]
            if not len(open_):
                break
        return out


class Cascade(MemberEnsemble):
    combine = staticmethod(cascade)

    def __init__(self, *, target: str, tolerance: float, max_macs: int | None, **choice: Any):
        super().__init__(**choice)
        if target not in TARGETS:
            raise ConfigError("ensemble.target", f"unknown target {target!r}; choose accuracy_of_last or max_cost")
        if target == "max_cost" and not is_int(max_macs, 1):
            raise ConfigError("ensemble.max_macs", f"target max_cost needs the budget: MACs per sample, a positive "
                              f"integer, got {max_macs!r}")
        check_number("ensemble.tolerance", tolerance, 0.0, 1.0, high_open=True, what="an accuracy in [0, 1)")
        self.target, self.tolerance, self.max_macs = target, float(tolerance), max_macs

    def combiner_tensors(self, k: int, num_classes: int) -> dict[str, Tensor]:
        return {"order": torch.arange(k), "macs": torch.zeros(k, dtype=torch.long),
                "thresholds": torch.full((max(k - 1, 0),), NEVER)}

    def build(self, members: list[nn.Module], num_classes: int) -> nn.Module:
        return CascadeNet(members, Combiner(cascade, self.combiner_tensors(len(members), num_classes)))

    @staticmethod
    def member_macs(net: nn.Module, input_shape: tuple[int, ...]) -> list[int]:
        from archfuse.cost import count_macs

        was = net.training
        net.eval()
        try:
            return [count_macs(m, input_shape) for m in net.members]
        finally:
            net.train(was)

    def check(self, net: nn.Module, data: DataView) -> None:
        if self.target != "max_cost" or not isinstance(net, CascadeNet):
            return
        cheapest = min(self.member_macs(net, data.input_shape))
        if self.max_macs < cheapest:
            raise ConfigError("ensemble.max_macs", f"{self.max_macs:,} MACs per sample cannot be met: the cheapest "
                              f"member alone costs {cheapest:,}; raise ensemble.max_macs or add a cheaper member")

    def fit_combiner(self, net: nn.Module, data: CombinerData) -> dict[str, Any]:
        c = net.combiner
        macs = torch.tensor(self.member_macs(net, data.data.input_shape))
        order = torch.tensor(sorted(range(len(macs)), key=lambda k: (int(macs[k]), k)))
        c.macs.copy_(macs)
        c.order.copy_(order)
        logits, y = data.member_logits("val")
        candidates = self.candidates(logits[order[0]])
        rows = []
        for t in candidates:
            th = torch.full_like(c.thresholds, t)
            stage = answering_stage(logits, order, th)
            rows.append((t, accuracy_of(cascade(logits, order, macs, th), y), expected_macs(stage, order, macs)))
        last_acc = accuracy_of(logits[order[-1]], y)
        if self.target == "accuracy_of_last":
            ok = [r for r in rows if r[1] >= last_acc - self.tolerance - 1e-9]
            chosen = min(ok, key=lambda r: (r[2], -r[1]))  # t = NEVER always qualifies
        else:
            ok = [r for r in rows if r[2] <= self.max_macs]
            if not ok:
                raise ConfigError("ensemble.max_macs", f"no threshold keeps the expected cost within "
                                  f"{self.max_macs:,} MACs per sample")
            chosen = max(ok, key=lambda r: (r[1], -r[2]))
        c.thresholds.fill_(chosen[0])
        report = {"order": order, "macs": macs, "threshold": chosen[0], "val_acc": chosen[1],
                  "val_acc_of_last": last_acc}
        for split in ("val", "test"):
            lg, _ = data.member_logits(split)
            stage = answering_stage(lg, order, c.thresholds)
            report[f"{split}_stage_shares"] = stage_shares(stage, len(order))
            report[f"{split}_expected_macs"] = expected_macs(stage, order, macs)
        report["test_latency_ms_per_sample"] = latency_per_sample(net, data.data.split_tensors("test")[0])
        return report

    @staticmethod
    def candidates(conf_logits: Tensor) -> list[float]:
        """Thresholds worth trying: quantiles of the first stage's confidence, 0 and 'never'."""
        conf = conf_logits.softmax(-1).amax(-1)
        qs = torch.quantile(conf.double(), torch.linspace(0, 1, 101, dtype=torch.double)).tolist()
        return sorted({0.0, NEVER, *qs})
