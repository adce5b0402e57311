"""archfuse-predict through the real command on real image files written from a data set's test split:
it labels a folder as archfuse's own network does (a damaged file listed and skipped), from a checkpoint
or an exported file, in every image format it reads; on MNIST-10k as PNGs its accuracy is the run's."""

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import REPO, SHARED_MNIST, cli_env, run_cli, run_dirs, summary
from exported_files import export, predict, write_pngs

# torchvision 0.29 announces, on every call of its image encoders and decoders, that they will move.
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding and encoding capabilities of TorchVision")


def rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def accuracy(table: list[dict[str, str]]) -> float:
    return sum(Path(r["path"]).parent.name == r["class"] for r in table) / len(table)


@pytest.fixture(scope="module")
def folder(trained_run, tmp_path_factory) -> tuple[str, Path, list[int]]:
    """The digits run's checkpoint and its 360 test images as PNGs in ROOT/<class>/, one damaged file and
    one file that is not an image among them."""
    ckpt = str(trained_run / "checkpoints" / "best.ckpt")
    root = tmp_path_factory.mktemp("pngs")
    labels, _ = write_pngs(ckpt, root)
    (root / "3" / "damaged.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    (root / "notes.txt").write_text("not an image")
    return ckpt, root, labels


def archfuse_classes(ckpt: str, files: list[str]) -> list[str]:
    """archfuse's own network on the PNGs' pixels, read here without archfuse-predict."""
    from torchvision.io import decode_image

    from archfuse.build import module_from_checkpoint
    from archfuse.checkpoint import read_checkpoint
    from archfuse.exporting.data_spec import checkpoint_spec
    from archfuse.exporting.network import normalised_logits

    spec = checkpoint_spec(read_checkpoint(ckpt, "ckpt"))
    images = torch.stack([decode_image(f).float() / 255 for f in files])
    net = module_from_checkpoint(ckpt).net.eval()
    return [spec["classes"][i] for i in normalised_logits(net, images, spec["mean"], spec["std"]).argmax(-1)]


def test_a_folder_is_labelled_as_archfuse_labels_it(workdir, folder):
    ckpt, root, labels = folder
    proc = predict(workdir, ckpt, root, workdir / "preds.csv")
    table = rows(workdir / "preds.csv")
    assert list(table[0]) == ["path", "class", "probability"]
    assert len(table) == len(labels) == 360
    assert [r["class"] for r in table] == archfuse_classes(ckpt, [r["path"] for r in table])
    assert all(0.0 < float(r["probability"]) <= 1.0 for r in table)
    assert f"labelled 360 images under {root} with {ckpt} (checkpoint): {workdir / 'preds.csv'}" in proc.stdout
    assert f"accuracy against the folder names: {accuracy(table):.4f}" in proc.stdout
    assert "unreadable: 1 file, not labelled:" in proc.stdout
    assert f"  {root / '3' / 'damaged.png'}: not a readable PNG, JPEG, BMP or WebP image (" in proc.stdout
    assert proc.stderr == ""  # the decoder's complaint about the damaged file is its reason, not printed
    # The same images from the run's own test: 8-bit PNGs of the same pixels, so the accuracy is the run's
    # within the rounding of the pixels to 8 bits.
    tested = run_cli(workdir, f"ckpt={ckpt}", "quiet=true", entry="archfuse.eval").stdout
    test_acc = float(next(line for line in tested.splitlines() if line.startswith("test/acc:")).split(": ")[1])
    assert accuracy(table) == pytest.approx(test_acc, abs=3 / 360)
    # An exported file labels them as the checkpoint does.
    out = workdir / "model.pt2"
    export(workdir, ckpt, "pt2", out)
    proc = predict(workdir, str(out), root, workdir / "exported.csv", "quiet=true")
    assert "(torch.export program)" in proc.stdout
    exported = rows(workdir / "exported.csv")
    assert [r["class"] for r in exported] == [r["class"] for r in table]
    assert max(abs(float(a["probability"]) - float(b["probability"])) for a, b in zip(exported, table)) < 1e-5


def test_a_progress_bar_shows_on_a_terminal_for_a_large_folder(workdir, folder):
    ckpt, root, _ = folder
    args = [sys.executable, "-m", "archfuse.predict", f"ckpt={ckpt}", f"input={root}", "batch_size=32"]
    terminal = {**cli_env(), "FORCE_COLOR": "1"}  # rich's Console then takes stderr for a terminal
    shown = subprocess.run(args, cwd=workdir, env=terminal, capture_output=True, text=True, timeout=300)
    assert shown.returncode == 0 and "labelling" in shown.stderr and "361/361" in shown.stderr, shown.stderr
    assert "Traceback" not in shown.stderr and "libpng" not in shown.stderr
    one_batch = subprocess.run(args[:-1] + ["batch_size=512"], cwd=workdir, env=terminal, capture_output=True,
                               text=True, timeout=300)
    assert one_batch.returncode == 0 and one_batch.stderr == ""  # no bar for what one batch holds
    # (and none where stderr is not a terminal: test_a_folder_is_labelled_as_archfuse_labels_it)


def test_every_image_format_and_the_top_k(workdir, folder):
    from PIL import Image

    ckpt, root, _ = folder
    source = Image.open(root / "0" / next(p.name for p in (root / "0").iterdir() if p.suffix == ".png"))
    images = workdir / "images"
    images.mkdir()
    for name in ("a.png", "b.jpg", "c.jpeg", "d.bmp", "e.webp"):
        source.save(images / name, **({"lossless": True} if name.endswith(".webp") else {}))
    source.convert("RGB").resize((56, 56)).save(images / "rgb_and_larger.png")  # converted and resized
    out = workdir / "model.onnx"
    export(workdir, ckpt, "onnx", out)
    proc = predict(workdir, str(out), images, workdir / "top3.csv", "top_k=3")
    table = rows(workdir / "top3.csv")
    assert list(table[0]) == ["path", "class", "probability", "class_2", "probability_2", "class_3", "probability_3"]
    assert sorted(Path(r["path"]).name for r in table) == ["a.png", "b.jpg", "c.jpeg", "d.bmp", "e.webp",
                                                         "rgb_and_larger.png"]
    for r in table:
        p = [float(r["probability"]), float(r["probability_2"]), float(r["probability_3"])]
        assert p == sorted(p, reverse=True) and len({r["class"], r["class_2"], r["class_3"]}) == 3
    by_name = {Path(r["path"]).name: r["class"] for r in table}
    assert by_name["a.png"] == by_name["d.bmp"] == by_name["e.webp"]  # lossless: the same pixels
    assert "(ONNX file)" in proc.stdout and "unreadable" not in proc.stdout and "accuracy" not in proc.stdout


NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def test_a_checkpoint_that_records_its_data_spec_is_read_with_it(workdir, folder):
    """A checkpoint with ``archfuse.data`` (as runs that record their data spec write it) is read as it is:
    its class names label the images and go into an exported file's JSON."""
    from archfuse.checkpoint import read_checkpoint
    from archfuse.exporting.data_spec import checkpoint_spec

    ckpt, root, _ = folder
    record = read_checkpoint(ckpt, "ckpt")
    spec = checkpoint_spec(record)  # computed from the run's data: no spec recorded in it
    record.setdefault("archfuse", {})["data"] = {**spec, "classes": NAMES}
    recorded = workdir / "recorded.ckpt"
    torch.save(record, recorded)
    predict(workdir, str(recorded), root / "7", workdir / "named.csv", "quiet=true")
    plain = predict(workdir, ckpt, root / "7", workdir / "plain.csv", "quiet=true")
    assert [NAMES[int(r["class"])] for r in rows(workdir / "plain.csv")] == [
        r["class"] for r in rows(workdir / "named.csv")]
    assert "unreadable" not in plain.stdout
    export(workdir, str(recorded), "pt2", workdir / "named.pt2")
    meta = json.loads((workdir / "named.pt2.json").read_text())
    assert meta["classes"] == NAMES and meta["mean"] == spec["mean"] and meta["input_shape"] == [1, 28, 28]


def refused(workdir, *args: str) -> str:
    proc = run_cli(workdir, *args, entry="archfuse.predict", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    return line.removeprefix("archfuse-predict: error: ")


def test_bad_input_is_refused(workdir, folder):
    ckpt, root, _ = folder
    assert refused(workdir, f"input={root}") == (
        "ckpt: is required: archfuse-predict ckpt=PATH input=FILE|DIR [out=preds.csv] [top_k=1]")
    assert refused(workdir, "ckpt=/nonexistent.ckpt", f"input={root}") == (
        "ckpt: /nonexistent.ckpt does not exist; give an archfuse checkpoint (.ckpt) or a file archfuse-export "
        "wrote (.pt2, .onnx)")
    assert refused(workdir, f"ckpt={ckpt}", f"input={workdir / 'nowhere'}") == (
        f"input: {workdir / 'nowhere'} does not exist; give an image file or a folder of images")
    (workdir / "empty").mkdir()
    assert refused(workdir, f"ckpt={ckpt}", f"input={workdir / 'empty'}").startswith(
        f"input: {workdir / 'empty'} holds no image files")
    lone = workdir / "lone.pt2"
    lone.write_bytes(b"not a file archfuse-export wrote")
    assert refused(workdir, f"ckpt={lone}", f"input={root}").startswith(f"ckpt: {lone}.json does not exist")
    assert refused(workdir, f"ckpt={ckpt}", f"input={root / '3' / 'damaged.png'}").startswith(
        "input: none of the 1 files could be read")
    assert refused(workdir, f"ckpt={ckpt}", f"input={root}", "top_k=11") == (
        "top_k: must be at most the number of classes (10), got 11")
    assert not (workdir / "preds.csv").exists()


@pytest.mark.slow
def test_mnist_as_png_files_is_labelled_at_the_runs_test_accuracy(workdir):
    if not (SHARED_MNIST / "t10k-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"real MNIST not found at {SHARED_MNIST}")
    data = workdir / "mnist"
    subprocess.run([sys.executable, str(REPO / "bench" / "prepare_mnist.py"), "--out", str(data), "--src",
                    str(SHARED_MNIST)], check=True, env=cli_env(), capture_output=True)
    (workdir / "run").mkdir()
    run_cli(workdir / "run", "data=mnist", f"data.root={data}", "model=seed001", "trainer.max_epochs=1",
            "data.train_subset=3000", "quiet=true", "cost.repeats=2", "cost.warmup=1")
    (run,) = run_dirs(workdir / "run")
    s = summary(run)
    ckpt = s["checkpoint"]
    pngs = workdir / "pngs"
    labels, spec = write_pngs(ckpt, pngs)
    assert len(labels) == 2000 and len(list(pngs.rglob("*.png"))) == 2000
    assert spec["classes"][0] == "0 - zero"  # torchvision's own names: the folders are named after them
    proc = predict(workdir, ckpt, pngs, workdir / "preds.csv", "quiet=true")
    table = rows(workdir / "preds.csv")
    assert accuracy(table) == pytest.approx(s["metrics"]["test/acc"], abs=1e-6)  # the same 2000 images (float32)
    assert f"accuracy against the folder names: {s['metrics']['test/acc']:.4f} (" in proc.stdout
    export(workdir, ckpt, "pt2", workdir / "mnist.pt2")
    predict(workdir, str(workdir / "mnist.pt2"), pngs, workdir / "exported.csv", "quiet=true")
    assert [r["class"] for r in rows(workdir / "exported.csv")] == [r["class"] for r in table]
    shutil.rmtree(pngs)
