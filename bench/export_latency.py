"""archfuse-export's files against archfuse's own evaluation of the same checkpoints, side by side in one
process on CPU: latency at batch 1 and 256, test accuracy and file size.

Trains the seed000 CNN with ``recipe=quantize`` as bench/quantize.py does (real MNIST when
../shared/data/mnist-t10k is there, else the digits), then writes four files with the real
archfuse-export: best.ckpt as ``format=pt2`` (torch.export program) and ``format=onnx`` (onnxruntime),
final.ckpt (int8) as ``format=pt2`` (an AOTInductor package) and as ``format=onnx`` (quantize/dequantize
pairs, onnxruntime's int8 kernels). Each file is loaded as a user loads it (the call in its JSON, no
archfuse) and timed against what archfuse itself runs for that checkpoint:
``module_from_checkpoint(ckpt).net`` behind the data's normalisation, as archfuse-eval evaluates it
(fp32 eager; int8 compiled by Inductor, the recipe's default). All take images in [0, 1]. The variants
take turns within each repeat, so a busy machine slows them alike.

    python bench/export_latency.py [--workdir DIR] [--epochs 3] [--threads 1] [--repeats 20]

With --workdir, a run already there (and files already written there) are reused.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))

from quantize import latencies, train  # noqa: E402  (bench/quantize.py: the same run, the same timer)

# name: (checkpoint, format, file name, extra archfuse-export keys)
FILES = {"pt2": ("best", "pt2", "best.pt2", ()), "onnx": ("best", "onnx", "best.onnx", ()),
         "int8 pt2": ("final", "pt2", "final.pt2", ()), "int8 onnx": ("final", "onnx", "final.onnx", ())}


def export(ckpt: str, fmt: str, out: Path, extra: tuple[str, ...], threads: int) -> dict:
    """archfuse-export through its command; the JSON it writes beside the file."""
    if not Path(f"{out}.json").is_file():
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(REPO / "src")}
        cmd = [sys.executable, "-m", "archfuse.export", f"ckpt={ckpt}", f"format={fmt}", f"out={out}", *extra]
        print("export:", " ".join(cmd[3:]), flush=True)
        subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return json.loads(Path(f"{out}.json").read_text())


def user_loader(path: Path, meta: dict, threads: int):
    """The file as its JSON says to load it, as a function of a batch."""
    if meta["kind"] == "onnx":
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return lambda x: torch.from_numpy(session.run(None, {meta["input_name"]: x.numpy()})[0])
    return eval(meta["load"], {"torch": torch, "path": str(path)})


def archfuse_net(ckpt: str, meta: dict):
    """archfuse's own network for ``ckpt`` behind the normalisation, on images in [0, 1]."""
    from archfuse.build import module_from_checkpoint

    net = module_from_checkpoint(ckpt).net.eval()
    mean = torch.tensor(meta["mean"]).reshape(1, -1, 1, 1)
    std = torch.tensor(meta["std"]).reshape(1, -1, 1, 1)
    return lambda x: net((x - mean) / std)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--workdir", type=Path, help="keep the run and the files here; reused when there")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        done = sorted((workdir / "outputs").rglob("summary.json")) if args.workdir else []
        s = json.loads(done[-1].read_text()) if done else train(workdir, args.epochs, args.threads)
        ckpts = {"best": s["best_checkpoint"], "final": s["checkpoint"]}
        (workdir / "files").mkdir(exist_ok=True)
        metas = {name: export(ckpts[src], fmt, workdir / "files" / file, extra, args.threads)
                 for name, (src, fmt, file, extra) in FILES.items()}

        from archfuse.build import build_datamodule
        from archfuse.exporting.job import test_images

        torch.set_num_threads(args.threads)
        dm = build_datamodule(s["config"])
        images = test_images(dm, metas["pt2"], dm.split_size("test"))
        _, labels = dm.split_tensors("test")
        variants = {"archfuse fp32 (best.ckpt)": archfuse_net(ckpts["best"], metas["pt2"]),
                    "archfuse int8 (final.ckpt)": archfuse_net(ckpts["final"], metas["int8 pt2"])}
        variants.update({f"{name} file": user_loader(workdir / "files" / file, metas[name], args.threads)
                         for name, (_, _, file, _) in FILES.items()})
        rows = {}
        with torch.inference_mode():
            for name, run in variants.items():  # the first call of the int8 network compiles it
                logits = torch.cat([run(chunk) for chunk in images.split(256)])
                rows[name] = {"acc": float((logits.argmax(-1) == labels).float().mean())}
        for b in (1, 256):
            for name, (median, fastest) in latencies(variants, images[:b].contiguous(), args.repeats).items():
                rows[name][b], rows[name][f"min{b}"] = median, fastest
    sizes = {f"{name} file": meta["size_bytes"] for name, meta in metas.items()}
    baseline = {f"{name} file": "archfuse int8 (final.ckpt)" if src == "final" else "archfuse fp32 (best.ckpt)"
                for name, (src, *_) in FILES.items()}
    print(f"data: {s['config']['data']['_target_'].rsplit('.', 1)[-1]}, {len(labels)} test images; seed000, "
          f"recipe=quantize; CPU {torch.backends.cpu.get_cpu_capability()}, {args.threads} thread(s); "
          f"median and min of {args.repeats} passes, variants interleaved")
    print(f"{'variant':<34} {'test acc':>8} {'MiB':>6} {'b1 ms':>7} {'b1 min':>7} {'b256 ms':>8} {'b256 min':>8}"
          f"  {'vs archfuse b1':>14} {'b256':>6}")
    for name, r in rows.items():
        size = f"{sizes[name] / 2**20:6.2f}" if name in sizes else f"{'':>6}"
        ratio = ""
        if name in baseline:
            base = rows[baseline[name]]
            ratio = f"  {base[1] / r[1]:>13.2f}x {base[256] / r[256]:>5.2f}x"
        print(f"{name:<34} {r['acc']:>8.4f} {size} {r[1]:>7.3f} {r['min1']:>7.3f} {r[256]:>8.2f} {r['min256']:>8.2f}"
              f"{ratio}")
    print("vs archfuse: archfuse's own time / the file's (above 1: the file is faster), each file against the "
          "checkpoint it was written from")
    for name, meta in metas.items():
        print(f"{name}: {meta['kind']}, verified at export: max |logit difference| "
              f"{meta['verification']['max_abs_logit_difference']:.3g}")


if __name__ == "__main__":
    main()
