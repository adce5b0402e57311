"""Evaluations outside the Trainer: a network's accuracy and loss on a whole split, and its members' logits.

Every rank computes the same numbers on the whole (unsharded) split, so no collective is needed and
DDP ranks stay in step; the splits are small enough for that (used between and after fits only).
"""

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from archfuse.context import DataView

BATCH = 512


def net_device(net: nn.Module) -> torch.device:
    tensor = next(iter(net.parameters()), None)
    if tensor is None:
        tensor = next(iter(net.buffers()), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def _batches(data: DataView, split: str, device: torch.device) -> Iterator[tuple[Tensor, Tensor]]:
    x, y = data.split_tensors(split)
    for start in range(0, len(y), BATCH):
        yield x[start:start + BATCH].to(device), y[start:start + BATCH].to(device)


def split_metrics(net: nn.Module, data: DataView, split: str) -> dict[str, float]:
    """{"acc", "loss"} of ``net`` as it is now on the whole ``split`` (cross-entropy, mean per sample)."""
    device = net_device(net)
    was_training = net.training
    net.eval()
    correct, loss, count = 0, 0.0, 0
    try:
        with torch.inference_mode():
            for xb, yb in _batches(data, split, device):
                logits = net(xb).float()
                correct += int((logits.argmax(-1) == yb).sum())
                loss += float(F.cross_entropy(logits, yb, reduction="sum"))
                count += len(yb)
    finally:
        net.train(was_training)
    return {"acc": correct / max(count, 1), "loss": loss / max(count, 1)}


def member_logits(net: nn.Module, data: DataView, split: str) -> tuple[Tensor, Tensor]:
    """(K x N x C logits of every member of an ensemble network, N targets) on the whole ``split``, on CPU."""
    device = net_device(net)
    was_training = net.training
    net.eval()
    outputs, targets = [], []
    try:
        with torch.inference_mode():
            for xb, yb in _batches(data, split, device):
                outputs.append(net.member_logits(xb).float().cpu())
                targets.append(yb.cpu())
    finally:
        net.train(was_training)
    return torch.cat(outputs, dim=1), torch.cat(targets)
