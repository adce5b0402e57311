"""archfuse-export through the real command: checkpoints of real runs written as pt2 and ONNX files that a
fresh process loads and runs with archfuse blocked, matching archfuse's own network; every refusal is one
line, exit code 2, with nothing written. AOTInductor compiles (int8 pt2) and the recipe and ensemble
variants are slow (-m slow); the default suite keeps one plain checkpoint per format."""

import subprocess
import sys

import pytest

from conftest import FAST, cli_env, run_cli, run_dirs, summary
from exported_files import archfuse_reference, export, run_without_archfuse, spec_of


def final_checkpoint(cwd, *overrides: str) -> str:
    run_cli(cwd, *FAST, *overrides)
    (run,) = run_dirs(cwd)
    return summary(run)["checkpoint"]


@pytest.fixture(scope="module")
def channel_pruned(tmp_path_factory) -> str:
    return final_checkpoint(tmp_path_factory.mktemp("channel_pruned"), "model=seed003", "recipe=prune_channels")


@pytest.fixture(scope="module")
def int8(tmp_path_factory) -> str:
    return final_checkpoint(tmp_path_factory.mktemp("int8"), "model=seed003", "recipe=quantize",
                            "recipe.quantize.compile=false")


@pytest.fixture(scope="module")
def pruned_and_cut(tmp_path_factory) -> str:
    return final_checkpoint(tmp_path_factory.mktemp("pruned_and_cut"), "model=seed003", "recipe=[prune,cut]")


@pytest.fixture(scope="module")
def merged_and_grown(tmp_path_factory) -> str:
    return final_checkpoint(tmp_path_factory.mktemp("merged_and_grown"), "model=seed003", "recipe=[merge,grow]")


@pytest.fixture(scope="module")
def cascade(tmp_path_factory) -> str:
    return final_checkpoint(tmp_path_factory.mktemp("cascade"), "model=seed003", "ensemble=cascade", "ensemble.size=2")


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory) -> str:
    return final_checkpoint(tmp_path_factory.mktemp("ensemble"), "model=seed003", "ensemble=mean", "ensemble.size=2")


@pytest.fixture(scope="module")
def plain(trained_run) -> str:
    return str(trained_run / "checkpoints" / "best.ckpt")


slow = pytest.mark.slow


@pytest.mark.parametrize("source, fmt", [
    ("plain", "pt2"), ("plain", "onnx"),
    pytest.param("channel_pruned", "pt2", marks=slow), pytest.param("channel_pruned", "onnx", marks=slow),
    pytest.param("pruned_and_cut", "pt2", marks=slow), pytest.param("pruned_and_cut", "onnx", marks=slow),
    pytest.param("merged_and_grown", "pt2", marks=slow), pytest.param("merged_and_grown", "onnx", marks=slow),
    pytest.param("ensemble", "pt2", marks=slow), pytest.param("ensemble", "onnx", marks=slow),
    pytest.param("cascade", "pt2", marks=slow), pytest.param("cascade", "onnx", marks=slow),
    pytest.param("int8", "pt2", marks=slow), pytest.param("int8", "onnx", marks=slow),
])
def test_a_checkpoint_exports_and_runs_without_archfuse(request, workdir, source, fmt):
    ckpt = request.getfixturevalue(source)
    out = workdir / "files" / f"{source}.{fmt}"
    proc = export(workdir, ckpt, fmt, out)
    meta = spec_of(out)
    kind = {"pt2": "aoti_package" if source == "int8" else "exported_program", "onnx": "onnx"}[fmt]
    assert meta["kind"] == kind and meta["format"] == fmt and meta["int8"] == (source == "int8")
    assert meta["classes"] == [str(i) for i in range(10)] and meta["input_shape"] == [1, 28, 28]
    assert meta["value_range"] == [0.0, 1.0] and len(meta["mean"]) == len(meta["std"]) == 1
    assert meta["source_checkpoint"] == ckpt and meta["archfuse_version"]
    v = meta["verification"]
    assert v["images"] == 64 and v["max_abs_logit_difference"] <= v["tolerance"]
    assert f"max |logit difference| {v['max_abs_logit_difference']:.3g}" in proc.stdout
    assert sorted(p.name for p in out.parent.iterdir()) == sorted([out.name, f"{out.name}.json"])  # nothing else
    # A fresh process, archfuse blocked, loads the file as its JSON says: 100 test images at once, then one.
    images, reference, spec = archfuse_reference(ckpt, 100)
    assert meta["mean"] == spec["mean"] and meta["std"] == spec["std"]
    together, alone = run_without_archfuse(out, [images, images[:1]], workdir)
    assert together.shape == (100, 10) and alone.shape == (1, 10)
    assert (together - reference).abs().max() <= v["tolerance"]
    assert (alone - reference[:1]).abs().max() <= v["tolerance"]
    assert meta["batch"] == {"min": 1, "max": None} and "any batch size" in proc.stdout


def test_the_default_file_lies_beside_the_checkpoint(workdir, trained_run, tmp_path):
    # A copy of the run's checkpoint, so the shared run's folder stays as it is.
    ckpt = tmp_path / "copy" / "best.ckpt"
    ckpt.parent.mkdir()
    ckpt.write_bytes((trained_run / "checkpoints" / "best.ckpt").read_bytes())
    run_cli(workdir, f"ckpt={ckpt}", "format=pt2", entry="archfuse.export")
    assert (ckpt.parent / "best.pt2").is_file() and (ckpt.parent / "best.pt2.json").is_file()


def refused(workdir, *args: str) -> str:
    proc = run_cli(workdir, *args, entry="archfuse.export", check=False)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("archfuse-export: error: "), proc.stderr
    return lines[0].removeprefix("archfuse-export: error: ")


def test_bad_input_is_refused_with_nothing_written(workdir, plain):
    out = workdir / "files" / "model.pt2"
    assert refused(workdir, "ckpt=/nonexistent/best.ckpt", "format=pt2", f"out={out}").startswith(
        "ckpt: /nonexistent/best.ckpt does not exist")
    damaged = workdir / "damaged.ckpt"
    damaged.write_bytes(open(plain, "rb").read()[:5000])
    assert f"ckpt: {damaged} is not a readable checkpoint" in refused(workdir, f"ckpt={damaged}", "format=pt2",
                                                                       f"out={out}")
    assert refused(workdir, f"ckpt={plain}", f"out={out}") == (
        "format: is required: archfuse-export ckpt=PATH format=pt2|onnx [out=FILE]")
    assert refused(workdir, f"ckpt={plain}", "format=tflite", f"out={out}") == (
        "format: unknown format 'tflite'; choose one of pt2, onnx")
    a_file = workdir / "a_file"
    a_file.write_text("")
    assert refused(workdir, f"ckpt={plain}", "format=pt2", f"out={a_file / 'model.pt2'}") == (
        f"out: cannot write {a_file / 'model.pt2'}: {a_file} is a file, not a directory")
    assert refused(workdir, f"ckpt={plain}", "format=onnx", f"out={out}") == (
        f"out: {out}: a format=onnx file's name ends in .onnx")
    (workdir / "folder.pt2").mkdir()
    assert refused(workdir, f"ckpt={plain}", "format=pt2", f"out={workdir / 'folder.pt2'}") == (
        f"out: {workdir / 'folder.pt2'} is a directory; give a file name ending in .pt2")
    assert refused(workdir, f"ckpt={plain}", "format=pt2", "out=/proc/model.pt2") == (
        "out: cannot write /proc/model.pt2: cannot create files in /proc (No such file or directory)")
    assert not out.parent.exists()


def test_a_file_that_does_not_match_is_not_written(workdir, plain):
    out = workdir / "files" / "model.onnx"
    proc = export(workdir, plain, "onnx", out, "tolerance=0", check=False)
    assert proc.returncode == 1, proc.stderr
    assert ("archfuse-export: error: the written file's logits differ from archfuse's own network's by up to "
            in proc.stderr)
    assert "over tolerance=0; nothing was written" in proc.stderr
    assert not out.parent.exists()  # nor the folder made for it


def test_what_onnx_cannot_express_is_refused_with_the_reason(workdir):
    # Dynamic int8 quantizes activations on the fly (choose_qparams), which torch.onnx cannot translate.
    ckpt = final_checkpoint(workdir, "model=mlp", "model.hidden_sizes=[32]", "recipe=quantize",
                            "recipe.quantize.mode=dynamic", "recipe.quantize.compile=false")
    message = refused(workdir, f"ckpt={ckpt}", "format=onnx", f"out={workdir / 'files' / 'int8.onnx'}")
    assert message == ("format: this int8 network cannot be written as onnx: torch.onnx has no translation for the "
                       "operator quantized_decomposed.choose_qparams.tensor; format=pt2 may hold it")
    assert not (workdir / "files").exists()


# onnx, onnxscript and onnxruntime look absent: found (torch looks for them) but failing to import.
NO_ONNX = """
import importlib.abc, importlib.machinery, sys

class Absent(importlib.abc.Loader):
    def create_module(self, spec):
        raise ModuleNotFoundError(f"No module named {spec.name!r}", name=spec.name)

    def exec_module(self, module):
        pass

class NoOnnx:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("onnx", "onnxscript", "onnxruntime"):
            return importlib.machinery.ModuleSpec(name, Absent())
        return None

sys.meta_path.insert(0, NoOnnx())
from archfuse.export import main
main()
"""


def test_missing_onnx_packages_are_named(workdir, plain):
    proc = subprocess.run([sys.executable, "-c", NO_ONNX, f"ckpt={plain}", "format=onnx", f"out={workdir / 'm.onnx'}"],
                          cwd=workdir, env=cli_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == ("archfuse-export: error: format: format=onnx needs onnx, onnxscript, onnxruntime, "
                                   "not installed here; install them with: pip install 'archfuse[export]' (or pip "
                                   "install onnx onnxscript onnxruntime)")


@pytest.mark.parametrize("entry, args", [("archfuse.export", ["format=pt2"]), ("archfuse.predict", ["input=."])])
def test_a_path_from_the_home_directory_is_expanded(workdir, entry, args):
    """``ckpt=~/...`` as users type it (the shell leaves a ~ after = alone) reaches the command expanded."""
    import os

    proc = run_cli(workdir, "ckpt=~/no_such_folder/best.ckpt", *args, entry=entry, check=False)
    home = os.path.expanduser("~")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"ckpt: {home}/no_such_folder/best.ckpt does not exist" in proc.stderr
