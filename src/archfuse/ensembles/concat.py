"""ensemble=concat (feature fusion): the members' penultimate features side by side, and a new linear
head on them. A member's features are its ``forward_features(x)`` when it has one (``num_features``
wide), else the input of its last linear layer (every archfuse model ends in one).

``freeze_members: true``: the head's gradient stops at the features, so the members learn only from
their own losses (members loaded from checkpoints are not trained at all) and the head learns to combine
them, and after training the head is refitted on the final features (a logistic regression with L2
``head_l2``, L-BFGS); ``false``: the head's loss also fine-tunes the members.
"""

from typing import Any

import torch
from torch import Tensor, nn

from archfuse.checks import check_number
from archfuse.ensembles.base import Combiner, CombinerData, EnsembleNet
from archfuse.ensembles.members import MemberEnsemble
from archfuse.errors import ConfigError


def last_linear(member: nn.Module) -> nn.Linear:
    linears = [m for m in member.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ConfigError("ensemble.members", f"{type(member).__name__} has no linear layer whose input could "
                          "serve as its features; give it forward_features(x) and num_features")
    return linears[-1]


def feature_width(member: nn.Module) -> int:
    if hasattr(member, "forward_features"):
        return int(member.num_features)
    return last_linear(member).in_features


class ConcatNet(EnsembleNet):
    def __init__(self, members: list[nn.Module], combiner: Combiner, num_classes: int):
        super().__init__(members, combiner)
        for i, member in enumerate(members):
            if isinstance(member, EnsembleNet):
                raise ConfigError(f"ensemble.checkpoints[{i}]", "an ensemble has no single penultimate layer; "
                                  "give single-model checkpoints to ensemble=concat")
        self.head = nn.Linear(sum(feature_width(m) for m in members), num_classes)

    def features_and_logits(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        """Each member's features and logits, from one pass through it."""
        features, logits = [], []
        for member in self.members:
            if hasattr(member, "forward_features"):
                f = member.forward_features(x)
                features.append(f)
                logits.append(member(x))
                continue
            captured = []
            hook = last_linear(member).register_forward_hook(lambda m, args, out: captured.append(args[0]))
            try:
                logits.append(member(x))
            finally:
                hook.remove()
            features.append(captured[-1].flatten(1))
        return features, torch.stack(logits)

    def forward(self, x: Tensor) -> Tensor:
        features, _ = self.features_and_logits(x)
        return self.head(torch.cat(features, dim=-1))


class Concat(MemberEnsemble):
    def __init__(self, *, freeze_members: bool, head_l2: float, **choice: Any):
        super().__init__(**choice)
        check_number("ensemble.head_l2", head_l2, 0.0)
        self.freeze_members, self.head_l2 = bool(freeze_members), float(head_l2)

    def build(self, members: list[nn.Module], num_classes: int) -> nn.Module:
        return ConcatNet(members, Combiner(type(self).combine), num_classes)

    def training_loss(self, net: nn.Module, batch: tuple[Tensor, ...], criterion: nn.Module) -> tuple[Tensor, Tensor]:
        x, y = batch[0], batch[1]
        features, member_logits = net.features_and_logits(x)
        fused = torch.cat([f.detach() if self.freeze_members else f for f in features], dim=-1)
        logits = net.head(fused)
        own = [criterion(m, y) for m in member_logits if m.requires_grad]
        return criterion(logits, y) + sum(own), logits.detach()

    def evaluate(self, net: nn.Module, member_logits: Tensor, data: CombinerData, split: str) -> Tensor:
        x, _ = data.data.split_tensors(split)
        device = next(net.parameters()).device
        was = net.training
        net.eval()
        try:
            with torch.inference_mode():
                return torch.cat([net(x[i:i + 512].to(device)).float().cpu() for i in range(0, len(x), 512)])
        finally:
            net.train(was)

    def fit_combiner(self, net: nn.Module, data: CombinerData) -> dict[str, Any]:
        report: dict[str, Any] = {"features": [feature_width(m) for m in net.members],
                                  "freeze_members": self.freeze_members}
        if self.freeze_members:  # the features have stopped moving: fit the head on them to convergence
            report["head_train_acc"] = refit_head(net, *data.data.split_tensors("train"), self.head_l2)
        return report


def refit_head(net: ConcatNet, x: Tensor, y: Tensor, l2: float, steps: int = 200) -> float:
    """The head as a multinomial logistic regression (L2 ``l2``) on the members' training features
    (no augmentation), fitted with L-BFGS from its trained weights; returns its training accuracy."""
    device = net.head.weight.device
    was = net.training
    net.eval()
    with torch.no_grad():
        feats = torch.cat([torch.cat(net.features_and_logits(x[i:i + 512].to(device))[0], dim=-1).float()
                           for i in range(0, len(x), 512)])
    net.train(was)
    y = y.to(device)
    head = net.head
    optimizer = torch.optim.LBFGS(list(head.parameters()), lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(head(feats), y) + l2 * head.weight.square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    with torch.no_grad():
        return float((head(feats).argmax(-1) == y).float().mean())
