"""Resident memory of a data set as archfuse holds it: MNIST-sized and CIFAR-10-sized sets read by data=mnist
and data=cifar10, and optionally a folder of large RGB images read by data=folder, in memory and streamed.

    python bench/data_memory.py [--before SRC] [--folder N]

Each measurement is a fresh process: import archfuse, build the data module of conf/data/<name>.yaml, run
its setup, then draw every training batch once as a run gets it (the loader, then on_after_batch_transfer).
It prints the images' bytes as held and, from /proc/self/status, the growth over the process's memory
before setup: anonymous resident memory (RssAnon: what the process itself owns) after setup and after the
epoch, the memory-mapped file pages resident after it (RssFile: the page cache, shared and reclaimable),
and the peak of all resident memory (VmHWM, mapped file pages included). The files are synthetic (random
pixels) at the real sets' sizes: MNIST 60,000 + 10,000 images of 1x28x28, CIFAR-10 50,000 + 10,000 of 3x32x32.

``--before SRC`` measures the same sets with another source tree as well (a src/ folder, for example of an
earlier commit: ``git archive COMMIT src conf | tar -x -C DIR`` gives DIR/src), side by side.
``--folder N`` adds N RGB 224x224 PNG images under data=folder: decoded once into the cache, then held in
memory (``data.in_memory=true``) or memory-mapped and streamed from the cache (``data.in_memory=0``).
"""

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
MIB = 1 << 20


# -- the child: one data module, measured --------------------------------------------------------------------

def status() -> dict[str, int]:
    """VmRSS, RssAnon, RssFile and VmHWM of this process, in bytes, after freed heap memory is handed back to
    the system (glibc's malloc_trim): what the process holds, not what its allocator keeps for reuse."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the figures include the allocator's cache
        pass
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            out[key] = int(value.split()[0]) * 1024
    return out


def held_bytes(dm) -> int:
    """Bytes of the images the module holds in memory (the pool and the test set; a storage shared by both
    counted once); a memory-mapped file holds none."""
    import torch

    stores = {}
    for split in ("train", "test"):
        x = dm._split[split][0]
        x = x if isinstance(x, torch.Tensor) else getattr(x, "storage", x)  # a split of a set held once
        if isinstance(x, torch.Tensor):
            stores[id(x)] = x.numel() * x.element_size()
    return sum(stores.values())


def child(name: str, overrides: dict) -> None:
    import torch
    from omegaconf import OmegaConf

    from archfuse.build import build_datamodule
    from archfuse.config_dir import config_dir

    torch.set_num_threads(1)
    node = OmegaConf.to_container(OmegaConf.load(Path(config_dir()) / "data" / f"{name}.yaml"))
    dm = build_datamodule({"data": {**node, **overrides}})
    before = status()
    dm.setup()
    after_setup = status()
    dtype = None
    for batch in dm.train_dataloader():
        x = dm.on_after_batch_transfer(batch, 0)[0]
        dtype = str(batch[0].dtype).removeprefix("torch.")
        del x, batch
    after_epoch = status()
    print(json.dumps({"held": held_bytes(dm), "stored_dtype": dtype,
                      "anon_setup": after_setup["RssAnon"] - before["RssAnon"],
                      "anon_epoch": after_epoch["RssAnon"] - before["RssAnon"],
                      "file_epoch": after_epoch["RssFile"] - before["RssFile"],
                      "peak": after_epoch["VmHWM"] - before["VmRSS"]}))


def measure(src: Path, name: str, overrides: dict) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, __file__, "--child", name, json.dumps(overrides)], env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"error: measuring {name} with {src} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- synthetic files at the real sets' sizes ----------------------------------------------------------------

def write_mnist(root: Path, n_train: int = 60000, n_test: int = 10000) -> None:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        header = np.array([2051, n, 28, 28], dtype=">u4").tobytes()
        (raw / f"{prefix}-images-idx3-ubyte").write_bytes(header + rng.integers(0, 256, n * 784, np.uint8).tobytes())
        labels = (np.arange(n) % 10).astype(np.uint8)
        (raw / f"{prefix}-labels-idx1-ubyte").write_bytes(np.array([2049, n], dtype=">u4").tobytes() + labels.tobytes())


def write_cifar(root: Path, per_batch: int = 10000, n_test: int = 10000) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        n = n_test if name == "test_batch" else per_batch
        batch = {"data": rng.integers(0, 256, (n, 3072), np.uint8), "labels": (np.arange(n) % 10).tolist()}
        (folder / name).write_bytes(pickle.dumps(batch))
    meta = {"label_names": [f"class{i}" for i in range(10)], "num_cases_per_batch": per_batch, "num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta))


def write_folder(root: Path, n: int, side: int = 224) -> None:
    import torch
    from torchvision.io import write_png

    g = torch.Generator().manual_seed(0)
    for i in range(n):
        folder = root / f"class{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        # Smooth images with noise: PNG files of a photo's order of size, quick to write.
        base = torch.randint(0, 256, (3, side // 8, side // 8), generator=g, dtype=torch.uint8)
        img = base.repeat_interleave(8, 1).repeat_interleave(8, 2)
        write_png(img, str(folder / f"{i:05d}.png"))


# -- the report ------------------------------------------------------------------------------------------

def row(label: str, m: dict) -> str:
    mib = lambda v: f"{v / MIB:,.0f}"  # noqa: E731
    return (f"| {label} | {m['stored_dtype']} | {mib(m['held'])} | {mib(m['anon_setup'])} | {mib(m['anon_epoch'])} "
            f"| {mib(m['file_epoch'])} | {mib(m['peak'])} |")


def main(argv: list[str]) -> None:
    if argv[:1] == ["--child"]:
        child(argv[1], json.loads(argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, help="another source tree's src/ folder, measured side by side")
    parser.add_argument("--folder", type=int, default=0, help="also N RGB 224x224 PNGs under data=folder")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="archfuse-data-memory-") as work:
        report(Path(work), args.before, args.folder)


def report(work: Path, before: Path | None, folder: int) -> None:
    write_mnist(work / "mnist")
    write_cifar(work / "cifar")
    trees = [("this tree", REPO / "src")] + ([("before", before.resolve())] if before else [])
    print("| set, source | images held as | held MiB | RssAnon after setup | after an epoch's batches "
          "| RssFile after it | peak over start |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for label, src in trees:
        print(row(f"MNIST-sized (70,000 x 1x28x28), {label}", measure(src, "mnist", {"root": str(work / "mnist")})),
              flush=True)
        print(row(f"CIFAR-10-sized (60,000 x 3x32x32), {label}", measure(src, "cifar10", {
            "root": str(work / "cifar"), "verify_checksums": False})), flush=True)
    if folder:
        write_folder(work / "folder", folder)
        options = {"root": str(work / "folder"), "cache_dir": str(work / "cache")}
        measure(REPO / "src", "folder", options)  # decodes once, into the cache
        for label, in_memory in (("data.in_memory=true", True), ("data.in_memory=0 (streamed)", 0)):
            print(row(f"folder ({folder:,} x 3x224x224 PNG), {label}",
                      measure(REPO / "src", "folder", {**options, "in_memory": in_memory})), flush=True)
    print("(MiB; growth over the process's memory before setup)")


if __name__ == "__main__":
    main(sys.argv[1:])
