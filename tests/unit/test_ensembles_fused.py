"""Same-architecture members fused into one computation compute what the loop over them computes."""

import pytest
import torch
from torch import nn

from conftest import plugin


# -- fused members ---------------------------------------------------------------------------------
def model_makers():
    from archfuse.models.convnet import ConvNet
    from archfuse.models.mlp import MLP
    from archfuse.models.seed000 import Seed000
    from archfuse.models.seed001 import Seed001
    from archfuse.models.seed003 import Seed003

    return [Seed000, Seed001, Seed003, lambda: MLP(hidden_sizes=[32, 16], activation="relu", dropout=0.1),
            lambda: ConvNet(width=4, depth=3, activation="gelu", kernel_size=3, batch_norm=True, dropout=0.2,
                            head_width=16)]


@pytest.mark.parametrize("i", range(5), ids=["seed000", "seed001", "seed003", "mlp", "convnet_bn"])
def test_fused_members_compute_what_the_loop_computes(i):
    from archfuse.ensembles.fused import CACHE, fuse

    torch.manual_seed(i)
    members = [model_makers()[i]() for _ in range(3)]
    for m in members:  # batch-norm statistics that differ between members
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.normal_()
                mod.running_var.uniform_(0.5, 2.0)
    net = plugin("ensemble", "mean", size=3).build(members, 10).eval()
    keys = list(net.state_dict())
    x = torch.randn(1, 1, 28, 28)
    with torch.no_grad():
        assert fuse(members) is not None
        loop = torch.stack([m(x) for m in members])
        assert torch.allclose(net.member_logits(x), loop, rtol=1e-4, atol=1e-5)
        assert net.__dict__[CACHE][1] is not None  # the fused path ran
        for p in members[1].parameters():  # a weight changes: the fused network follows
            p.mul_(1.1)
        loop = torch.stack([m(x) for m in members])
        assert torch.allclose(net.member_logits(x), loop, rtol=1e-4, atol=1e-5)
    assert list(net.state_dict()) == keys  # nothing of the fused copy enters a checkpoint


def test_members_that_differ_are_not_fused():
    from archfuse.ensembles.fused import fuse
    from archfuse.models.seed001 import Seed001
    from archfuse.models.seed003 import Seed003

    assert fuse([Seed001(), Seed003()]) is None
    assert fuse([Seed003()]) is None
    net = plugin("ensemble", "mean", size=2).build([Seed001(), Seed003()], 10).eval()
    with torch.no_grad():
        assert net.member_logits(torch.randn(1, 1, 28, 28)).shape == (2, 1, 10)
