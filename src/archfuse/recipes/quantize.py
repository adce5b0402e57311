"""recipe=quantize: int8 through torchao's PT2E flow with the x86 Inductor quantizer.

``mode``: ``dynamic`` (weights int8, activations quantized on the fly; Linear layers only), ``static``
(weights and activations int8, activation ranges calibrated on ``calibration_batches`` batches of the
training split) or ``qat`` (fake-quantized fine-tune for ``fine_tune_epochs``, then converted).

The network is exported (torch.export), prepared with observers, calibrated or fine-tuned, and converted
to a graph of int8 weights with quantize/dequantize ops. That graph runs int8 kernels only once Inductor
compiles it with freezing on (it then fuses the q/dq patterns into oneDNN int8 convolutions and matmuls);
eager it computes the same numbers with reference ops, slowly. ``compile: false`` keeps it eager.

A converted graph cannot be pickled, so the checkpoint keeps, as tensors in the recipe state, the fp32
weights the network was exported from and the prepared graph's state (its weights, batch norms folded
in, and the observers' calibration statistics); ``restore`` repeats export, prepare and convert from
them: deterministic, so the reloaded int8 model equals the saved one.
"""

import logging
import platform
import warnings
from typing import Any

import torch
from torch import Tensor, nn

from archfuse.checks import check_choice, check_count, check_number
from archfuse.context import DataView
from archfuse.errors import ConfigError
from archfuse.recipes.base import AfterFit, Recipe

MODES = ("dynamic", "static", "qat")
EXAMPLE_BATCH = 4  # export traces a batch of this size, with the batch dimension left dynamic
CHUNK = 256  # compiled int8 calls take batches of 1, 2, 4, ..., CHUNK samples (larger ones are split)
SHAPES = CHUNK.bit_length() + 1  # how many batch shapes can be compiled


class _DropNotice(logging.Filter):
    """Drops torch's log notices that torchao and Inductor trigger on every import/compile (they are about
    torch internals, not about anything the user can change)."""

    NOTICES = ("is an Enum subclass and is now natively supported", "No CUDA runtime is found")

    def filter(self, record: logging.LogRecord) -> bool:
        return not any(n in record.getMessage() for n in self.NOTICES)


for _name in ("torch.utils._pytree", "torch.utils.cpp_extension"):
    logging.getLogger(_name).addFilter(_DropNotice())


def _pt2e():
    """torchao's PT2E entry points (imported on first use: torchao takes a while to import)."""
    from torchao.quantization.pt2e import move_exported_model_to_eval, move_exported_model_to_train
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e, prepare_qat_pt2e
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as x86

    return x86, prepare_pt2e, prepare_qat_pt2e, convert_pt2e, move_exported_model_to_train, move_exported_model_to_eval


def cpu_can_run(mode: str) -> str | None:
    """Why this CPU cannot run ``mode`` (None when it can): the x86 Inductor int8 kernels are oneDNN's."""
    if platform.machine().lower() not in ("x86_64", "amd64", "i686", "x86"):
        return f"the x86 Inductor int8 backend needs an x86 CPU, this one is {platform.machine()}"
    if not torch.backends.mkldnn.is_available():
        return "this PyTorch build has no oneDNN (mkldnn), which runs the x86 int8 kernels"
    return None


def export(net: nn.Module, input_shape: tuple[int, ...]) -> Any:
    """The network as an exported graph module with a dynamic batch dimension."""
    example = (torch.zeros(EXAMPLE_BATCH, *input_shape),)
    batch = torch.export.Dim("batch", min=1)
    return torch.export.export(net, example, dynamic_shapes=({0: batch},)).module()


def prepare(net: nn.Module, input_shape: tuple[int, ...], mode: str) -> Any:
    """Exported and prepared: observers (static, dynamic) or fake quantizers (qat) inserted."""
    x86, prepare_pt2e, prepare_qat_pt2e, *_ = _pt2e()
    quantizer = x86.X86InductorQuantizer()
    quantizer.set_global(x86.get_default_x86_inductor_quantization_config(is_qat=mode == "qat",
                                                                         is_dynamic=mode == "dynamic"))
    graph = export(net, input_shape)
    return prepare_qat_pt2e(graph, quantizer) if mode == "qat" else prepare_pt2e(graph, quantizer)


def load_prepared_state(prepared: nn.Module, state: dict[str, Tensor]) -> None:
    """Every tensor of a prepared graph's state, copied in by name. (load_state_dict leaves the observers'
    ``eps`` at its default, which changes the converted scales.)"""
    with torch.no_grad():
        for name, value in state.items():
            owner_name, _, attr = name.rpartition(".")
            owner = prepared.get_submodule(owner_name) if owner_name else prepared
            current = getattr(owner, attr)
            if current.shape != value.shape:
                current.resize_(value.shape)
            current.copy_(value)


def convert(prepared: nn.Module) -> nn.Module:
    """The int8 graph: weights stored as int8, fp32 copies the graph no longer reads removed."""
    *_, convert_pt2e, _, to_eval = _pt2e()
    graph = convert_pt2e(prepared)
    to_eval(graph)
    used = {node.target for node in graph.graph.nodes if node.op == "get_attr"}
    for name in [k for k in graph.state_dict() if k not in used]:
        owner_name, _, attr = name.rpartition(".")
        delattr(graph.get_submodule(owner_name) if owner_name else graph, attr)
    # The int8 weights count as the network's parameters (their number is unchanged by quantization).
    for name in used:
        owner_name, _, attr = name.rpartition(".")
        owner = graph.get_submodule(owner_name) if owner_name else graph
        value = getattr(owner, attr)
        if isinstance(value, Tensor) and value.dtype == torch.int8 and not isinstance(value, nn.Parameter):
            if attr in owner._buffers:
                del owner._buffers[attr]
            else:
                delattr(owner, attr)
            owner.register_parameter(attr, nn.Parameter(value, requires_grad=False))
    return graph


def quantized_ops(graph: nn.Module) -> dict[str, int]:
    """How many quantize/dequantize ops of each kind the int8 graph runs."""
    ops: dict[str, int] = {}
    for node in graph.graph.nodes:
        name = str(node.target)
        if node.op == "call_function" and name.startswith("quantized_decomposed."):
            key = name.removeprefix("quantized_decomposed.").split(".")[0]
            ops[key] = ops.get(key, 0) + 1
    return ops


def enable_int8_compilation() -> None:
    """Process-wide Inductor settings the int8 graph needs, set before its first compile. Freezing lets
    Inductor fold the int8 weights into prepacked oneDNN kernels; without it the graph runs reference ops
    (measured: 1.7x instead of 22x over eager fp32). It applies to inference graphs only, and has to hold
    for every recompile (a new batch shape, grad mode or input kind), hence global rather than a patch.
    Each batch shape (and each input kind) is a compile of its own: room for them all."""
    torch._inductor.config.freezing = True
    torch._dynamo.config.recompile_limit = max(torch._dynamo.config.recompile_limit, 4 * SHAPES)
    # Inductor's oneDNN lowering copies a tensor with torch.tensor(t): a notice about torch's code, not the user's.
    warnings.filterwarnings("ignore", message="To copy construct from a tensor", category=UserWarning,
                            module="torch._inductor.mkldnn_lowerings")


class QATNet(nn.Module):
    """The fake-quantized graph being fine-tuned. Exported graphs refuse ``train()``/``eval()``; torchao
    switches their dropout and batch norm instead. Fake quantization runs in fp32, outside autocast."""

    def __init__(self, graph: nn.Module):
        super().__init__()
        self.graph = graph

    def train(self, mode: bool = True) -> "QATNet":
        *_, to_train, to_eval = _pt2e()
        self.training = mode
        (to_train if mode else to_eval)(self.graph)
        return self

    def forward(self, x: Tensor) -> Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return self.graph(x.float())


class Int8Net(nn.Module):
    """The converted int8 graph; its forward is compiled by Inductor with freezing on (where the int8
    kernels come from), eager under a dispatch mode (the FLOP counter) or with ``compile=False``."""

    def __init__(self, graph: nn.Module, compile: bool = True):
        super().__init__()
        self.graph, self.compile = graph, compile
        self.__dict__["_compiled"] = None  # not a submodule: the same tensors, not a second state_dict copy

    def train(self, mode: bool = True) -> "Int8Net":
        self.training = mode  # inference only; the exported graph itself refuses train()/eval()
        return self

    def forward(self, x: Tensor) -> Tensor:
        from torch.utils._python_dispatch import is_in_torch_dispatch_mode

        x = x.float()
        if not self.compile or is_in_torch_dispatch_mode():
            return self.graph(x)
        return torch.cat([self._compiled_run(chunk) for chunk in x.split(CHUNK)])

    def _compiled_run(self, x: Tensor) -> Tensor:
        """One compiled call on a batch padded to a power of two (at most CHUNK): a few static shapes, each
        compiled once. (Inductor's int8 convolutions fail their stride checks with a dynamic batch size.)
        Samples do not interact, so each sample's output is the same whatever batch it arrives in."""
        n = len(x)
        size = 1 << (n - 1).bit_length()
        if size != n:
            x = torch.cat([x, x.new_zeros(size - n, *x.shape[1:])])
        if self._compiled is None:
            enable_int8_compilation()
            self.__dict__["_compiled"] = torch.compile(self.graph, dynamic=False)
        return self._compiled(x)[:n]


class Quantize(Recipe):
    """int8 after training: dynamic, static (calibrated) or quantization-aware (fine-tuned)."""

    evaluation_device = "cpu"

    def __init__(self, *, mode: str, calibration_batches: int, fine_tune_epochs: int, lr: float | None,
                 compile: bool):
        check_choice("recipe.quantize.mode", mode, MODES, what="mode")
        check_count("recipe.quantize.calibration_batches", calibration_batches, 1)
        check_count("recipe.quantize.fine_tune_epochs", fine_tune_epochs, 1)
        check_number("recipe.quantize.lr", lr, 0.0, low_open=True, what="a positive number or null", none_ok=True)
        self.mode, self.calibration_batches = mode, calibration_batches
        self.fine_tune_epochs, self.lr, self.compile = fine_tune_epochs, lr, bool(compile)

    def check(self, net: nn.Module, data: DataView) -> None:
        reason = cpu_can_run(self.mode)
        if reason:
            raise ConfigError("recipe.quantize.mode", f"mode={self.mode} cannot run here: {reason}")
        if self.mode == "dynamic" and not any(isinstance(m, nn.Linear) for m in net.modules()):
            raise ConfigError("recipe.quantize.mode", f"mode=dynamic quantizes Linear layers only and "
                              f"{type(net).__name__} has none; use mode=static")
        was_training = net.training
        try:
            export(net.eval(), data.input_shape)
        except Exception as err:  # torch.export raises many types for what it cannot trace
            raise ConfigError("recipe.quantize", f"{type(net).__name__} cannot be exported for int8 "
                              f"(torch.export): {str(err).strip().splitlines()[0][:300]}") from None
        finally:
            net.train(was_training)

    def after_fit(self, step: AfterFit) -> dict[str, Any]:
        data, shape = step.data, tuple(step.run.input_shape)
        net = step.net.cpu().eval()
        # The weights export starts from: prepare folds batch norms into them, so restore() repeats it from these.
        float_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        report: dict[str, Any] = {"mode": self.mode, "compiled": self.compile}
        if self.mode == "qat":
            step.net = QATNet(prepare(net.train(), shape, "qat"))
            report["fine_tune"] = step.fine_tune(self.fine_tune_epochs, lr=self.lr)
            step.net = step.net.cpu().eval()
            prepared = step.net.graph
        else:
            prepared = prepare(net, shape, self.mode)
            x, _ = data.split_tensors("train")
            samples = min(len(x), self.calibration_batches * data.batch_size)
            with torch.no_grad():
                for batch in x[:samples].split(data.batch_size):
                    prepared(batch.float())
            report["calibration_samples"] = samples
        state = {k: v.detach().clone() for k, v in prepared.state_dict().items()}
        step.net = self._int8(prepared, {"float": float_state, "prepared": state}, shape)
        report["quantized_ops"] = quantized_ops(step.net.graph)
        report["summary"] = f"int8 {self.mode}{'' if self.compile else ' (eager reference ops)'}"
        return report

    def _int8(self, prepared: nn.Module, tensors: dict[str, dict[str, Tensor]], shape: tuple[int, ...]) -> Int8Net:
        net = Int8Net(convert(prepared), self.compile)
        net.saved_tensors, net.input_shape = tensors, list(shape)  # what restore() rebuilds it from
        return net

    def state(self, net: nn.Module) -> Any:
        if not isinstance(net, Int8Net):
            return None
        return {"mode": self.mode, "input_shape": net.input_shape, **net.saved_tensors}

    def restore(self, net: nn.Module, state: Any) -> nn.Module:
        """The int8 network of a checkpoint: the fp32 weights it was exported from, exported and prepared
        again, the calibrated (or fine-tuned) prepared state copied in, converted."""
        shape = tuple(state["input_shape"])
        net = net.cpu()
        net.load_state_dict(state["float"])
        prepared = prepare(net.train(state["mode"] == "qat"), shape, state["mode"])
        if state["mode"] == "qat":
            _pt2e()[-1](prepared)  # to eval: the converted graph is inference-only
        load_prepared_state(prepared, state["prepared"])
        return self._int8(prepared, {"float": state["float"], "prepared": state["prepared"]}, shape)
