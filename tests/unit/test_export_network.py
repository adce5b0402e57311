"""The network archfuse-export writes: an int8 graph whose one-channel convolution is widened for
Inductor's dynamic batch computes what the int8 graph computes, and nothing else in it changes."""

import torch
from torch import nn

from archfuse.exporting.network import exported_network, widened_single_channel_convs
from archfuse.recipes.quantize import Int8Net, convert, prepare


def int8_graph(channels: int) -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(channels, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                        nn.Flatten(), nn.Linear(8 * 8 * 8, 10)).eval()
    prepared = prepare(net, (channels, 8, 8), "static")
    with torch.no_grad():
        for _ in range(3):
            prepared(torch.randn(16, channels, 8, 8))
    return convert(prepared)


def conv_weights(graph: nn.Module) -> list[torch.Size]:
    return [t.shape for name, t in graph.named_parameters() if t.dim() == 4 and t.dtype == torch.int8] + [
        t.shape for name, t in graph.named_buffers() if t.dim() == 4 and t.dtype == torch.int8]


def test_a_one_channel_int8_convolution_takes_a_zero_channel_with_the_same_outputs():
    graph = int8_graph(1)
    widened = widened_single_channel_convs(graph)
    assert sorted(conv_weights(widened)) == [torch.Size([8, 2, 3, 3]), torch.Size([8, 8, 3, 3])]
    assert sorted(conv_weights(graph)) == [torch.Size([8, 1, 3, 3]), torch.Size([8, 8, 3, 3])]  # a copy
    x = torch.randn(5, 1, 8, 8)
    with torch.no_grad():
        assert torch.equal(widened(x), graph(x))


def test_other_int8_graphs_are_left_as_they_are_and_only_inductor_gets_the_widened_one():
    graph = int8_graph(3)
    assert sorted(conv_weights(widened_single_channel_convs(graph))) == sorted(conv_weights(graph))
    one = Int8Net(int8_graph(1), compile=False)
    plain = exported_network(one, [0.5], [0.25])
    assert plain.net is one.graph
    assert torch.Size([8, 2, 3, 3]) in conv_weights(exported_network(one, [0.5], [0.25], inductor=True).net)
