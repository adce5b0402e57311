"""What a network costs: parameters, MACs, bytes and measured CPU inference latency."""

import statistics
import time

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def size_bytes(net: nn.Module) -> int:
    """Bytes of every tensor the network holds: parameters, buffers, and tensors kept as plain attributes
    (the packed int8 weights and scales of a converted graph module). Each tensor is counted once."""
    tensors = {id(t): t for t in (*net.parameters(), *net.buffers())}
    for module in net.modules():
        tensors.update({id(v): v for v in vars(module).values() if isinstance(v, torch.Tensor)})
    return sum(t.numel() * t.element_size() for t in tensors.values())


def count_macs(net: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates for one sample (torch's FLOP counter counts a MAC as 2 FLOPs)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        net(torch.zeros(1, *input_shape))
    return counter.get_total_flops() // 2


MIN_TIMED = 3  # timed passes a latency has even when its time budget runs out


def measure_latency_ms(net: nn.Module, input_shape: tuple[int, ...], batch_size: int, repeats: int,
                       warmup: int, max_seconds: float | None = None) -> float:
    """Median wall time of one CPU forward pass of ``batch_size`` samples, in milliseconds: ``warmup``
    untimed passes, then ``repeats`` timed ones. With ``max_seconds`` the measurement ends once it has
    taken that long (warm-up included) and has at least MIN_TIMED timed passes (fewer when ``repeats``
    asks fewer): on a fast host nothing changes, on a slow or busy one a short run does not spend more
    time measuring its cost than that."""
    x = torch.randn(batch_size, *input_shape)
    times: list[float] = []
    deadline = None if max_seconds is None else time.perf_counter() + max_seconds
    with torch.inference_mode():
        done_warming = warmup
        i = 0
        while len(times) < repeats:
            start = time.perf_counter()
            net(x)
            end = time.perf_counter()
            if i >= done_warming:
                times.append((end - start) * 1000.0)
            i += 1
            if deadline is not None and end > deadline:
                if i < done_warming:
                    done_warming = i  # the warm-up is cut short: timing starts now
                elif len(times) >= min(MIN_TIMED, repeats):
                    break
    return statistics.median(times)


def measure_cost(net: nn.Module, input_shape: tuple[int, ...], batch_size: int, repeats: int,
                 warmup: int, max_seconds: float | None = None) -> dict[str, float]:
    """Parameters, MACs and bytes, and the median CPU latency (measure_latency_ms); the network is left
    where and as it was."""
    was_training = net.training
    device = next(iter(net.parameters()), torch.empty(0)).device
    net = net.eval().cpu()
    try:
        return {
            "params": count_params(net),
            "macs": count_macs(net, input_shape),
            "size_bytes": size_bytes(net),
            "latency_ms": measure_latency_ms(net, input_shape, batch_size, repeats, warmup, max_seconds),
            "latency_batch_size": batch_size,
        }
    finally:
        net.to(device).train(was_training)
