"""Helpers of the export and predict tests: the real commands, a fresh process that loads a file with
archfuse blocked, and image folders written from a data set's tensors."""

import json
import subprocess
import sys
from pathlib import Path

import torch

from conftest import cli_env, run_cli

# Loads a file as its JSON says (the "load" call), runs it on saved inputs, saves the outputs; any import of
# archfuse fails, and none may have happened by the end.
LOAD_WITHOUT_ARCHFUSE = r"""
import json, sys

class NoArchfuse:
    def find_spec(self, name, path=None, target=None):
        if name == "archfuse" or name.startswith("archfuse."):
            raise ModuleNotFoundError(f"blocked: {name}")
        return None

sys.meta_path.insert(0, NoArchfuse())
import torch

path, inputs, outputs = sys.argv[1:4]
meta = json.load(open(path + ".json"))
if meta["kind"] == "onnx":
    import onnxruntime
    session = eval(meta["load"], {"onnxruntime": onnxruntime, "path": path})
    run = lambda x: torch.from_numpy(session.run([meta["output_name"]], {meta["input_name"]: x.numpy()})[0])
else:
    run = eval(meta["load"], {"torch": torch, "path": path})
with torch.inference_mode():
    torch.save([run(x) for x in torch.load(inputs)], outputs)
leaked = sorted(m for m in sys.modules if m == "archfuse" or m.startswith("archfuse."))
assert not leaked, leaked
print("loaded without archfuse")
"""


def export(cwd: Path, ckpt: str, fmt: str, out: Path, *extra: str, check: bool = True) -> subprocess.CompletedProcess:
    return run_cli(cwd, f"ckpt={ckpt}", f"format={fmt}", f"out={out}", *extra, entry="archfuse.export", check=check)


def predict(cwd: Path, ckpt: str, input_path: Path, out: Path, *extra: str, check: bool = True):
    return run_cli(cwd, f"ckpt={ckpt}", f"input={input_path}", f"out={out}", *extra, entry="archfuse.predict",
                   check=check)


def run_without_archfuse(path: Path, inputs: list[torch.Tensor], workdir: Path) -> list[torch.Tensor]:
    """The file's outputs on each of ``inputs``, computed in a fresh process where archfuse cannot load."""
    torch.save(inputs, workdir / "inputs.pt")
    env = {k: v for k, v in cli_env().items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", LOAD_WITHOUT_ARCHFUSE, str(path), str(workdir / "inputs.pt"),
                           str(workdir / "outputs.pt")], cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0 and "loaded without archfuse" in proc.stdout, proc.stderr[-3000:]
    return torch.load(workdir / "outputs.pt")


def archfuse_reference(ckpt: str, count: int) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """(the checkpoint's first ``count`` test images in [0, 1], archfuse's own logits on them, data spec)."""
    from archfuse.build import module_from_checkpoint
    from archfuse.checkpoint import read_checkpoint
    from archfuse.exporting.data_spec import checkpoint_datamodule, checkpoint_spec
    from archfuse.exporting.job import test_images
    from archfuse.exporting.network import normalised_logits

    ckpt_dict = read_checkpoint(ckpt, "ckpt")
    dm = checkpoint_datamodule(ckpt_dict, None)
    spec = checkpoint_spec(ckpt_dict, dm=dm)
    images = test_images(dm, spec, count)
    net = module_from_checkpoint(ckpt).net.eval()
    return images, normalised_logits(net, images, spec["mean"], spec["std"]), spec


def write_pngs(ckpt: str, root: Path) -> tuple[list[int], dict]:
    """The checkpoint's test split as 8-bit PNG files, ROOT/<class name>/<index>.png; its labels and spec."""
    from torchvision.io import write_png

    from archfuse.checkpoint import read_checkpoint
    from archfuse.exporting.data_spec import checkpoint_datamodule, checkpoint_spec
    from archfuse.exporting.job import test_images

    ckpt_dict = read_checkpoint(ckpt, "ckpt")
    dm = checkpoint_datamodule(ckpt_dict, None)
    spec = checkpoint_spec(ckpt_dict, dm=dm)
    images = test_images(dm, spec, dm.split_size("test"))
    _, labels = dm.split_tensors("test")
    pixels = images.mul(255).round().to(torch.uint8)
    for i, (image, label) in enumerate(zip(pixels, labels.tolist(), strict=True)):
        folder = root / spec["classes"][label]
        folder.mkdir(parents=True, exist_ok=True)
        write_png(image, str(folder / f"{i:05d}.png"))
    return labels.tolist(), spec


def spec_of(path: Path) -> dict:
    return json.loads(path.with_name(path.name + ".json").read_text())
