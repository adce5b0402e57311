"""The file formats: how each is written from the exported network, and how each is loaded and run.

- ``pt2``: a torch.export ExportedProgram (``torch.export.save``), loaded with
  ``torch.export.load(path).module()``; any batch size.
- ``pt2`` of an int8 result: an AOTInductor package compiled with freezing (Inductor's oneDNN int8
  kernels, where int8's speed is), loaded with ``torch._inductor.aoti_load_package(path)``; any batch size.
- ``onnx``: torch.onnx's dynamo exporter, one self-contained file, run in onnxruntime; any batch size.
  An int8 result is written as quantize/dequantize pairs around float ops, which onnxruntime fuses into
  its own int8 kernels.

Loading here needs torch (and onnxruntime for ONNX) only: the same calls run without archfuse.
"""

import re
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from archfuse.errors import ConfigError

INPUT, OUTPUT = "images", "logits"
# What a file is, and the one call that loads it (written into its JSON for the user).
LOADERS = {
    "exported_program": "torch.export.load(path).module()",
    "aoti_package": "torch._inductor.aoti_load_package(path)",
    "onnx": "onnxruntime.InferenceSession(path)",
}


def kind_of(fmt: str, int8: bool) -> str:
    if fmt == "onnx":
        return "onnx"
    return "aoti_package" if int8 else "exported_program"


def export_program(model: nn.Module, input_shape: list[int]) -> Any:
    """``model`` traced by torch.export with a dynamic batch dimension."""
    example = torch.rand(2, *input_shape)
    return torch.export.export(model, (example,), dynamic_shapes=({0: torch.export.Dim("batch", min=1)},))


def write(kind: str, model: nn.Module, input_shape: list[int], path: str, what: str) -> None:
    """``model`` written to ``path`` as ``kind``; what an exporter cannot express is a ConfigError saying
    why (``what`` names the network: "this int8 network")."""
    try:
        if kind == "onnx":
            _write_onnx(model, input_shape, path)
            return
        program = export_program(model, input_shape)
        if kind == "aoti_package":
            _write_aoti(program, path)
        else:
            torch.export.save(program, path)
    except Exception as err:  # the exporters raise many types for what they cannot express
        fmt = "onnx" if kind == "onnx" else "pt2"
        raise ConfigError("format", f"{what} cannot be written as {fmt}: {exporter_reason(err)}"
                          f"{'; format=pt2 may hold it' if fmt == 'onnx' else ''}") from None


def exporter_reason(err: Exception) -> str:
    """The line of an exporter's error that says what it could not express."""
    text = str(err)
    op = re.search(r"No ONNX function found for <OpOverload\(op='([^']+)', overload='([^']+)'\)>", text)
    if op:
        return f"torch.onnx has no translation for the operator {op.group(1)}.{op.group(2)}"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (lines[0] if lines else type(err).__name__)[:400]


def _write_aoti(program: Any, path: str) -> None:
    """AOTInductor package with freezing on, compiled under no_grad (Inductor freezes inference graphs
    only, and only frozen int8 graphs get the oneDNN int8 kernels)."""
    from archfuse.recipes.quantize import enable_int8_compilation

    enable_int8_compilation()
    with torch.no_grad():
        torch._inductor.aoti_compile_and_package(program, package_path=path)


def _write_onnx(model: nn.Module, input_shape: list[int], path: str) -> None:
    import logging

    for name in ("onnxscript", "onnx_ir"):  # the graph optimiser's notes, at INFO, on every export
        logging.getLogger(name).setLevel(logging.WARNING)
    example = torch.rand(2, *input_shape)
    with torch.no_grad():
        torch.onnx.export(model, (example,), path, dynamo=True, input_names=[INPUT], output_names=[OUTPUT],
                          dynamic_shapes=({0: torch.export.Dim("batch", min=1)},), external_data=False,
                          verbose=False)


def load(kind: str, path: str) -> Callable[[Tensor], Tensor]:
    """The file as a function: float images (N, C, H, W) in [0, 1] -> logits (N, classes)."""
    if kind == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        run = lambda x: torch.from_numpy(session.run(None, {name: x.contiguous().numpy()})[0])  # noqa: E731
    elif kind == "aoti_package":
        run = torch._inductor.aoti_load_package(path)
    else:
        run = torch.export.load(path).module()

    def forward(x: Tensor) -> Tensor:
        x = x.float()
        with torch.inference_mode():
            return run(x)

    return forward

