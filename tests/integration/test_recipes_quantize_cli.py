"""recipe=distill and recipe=quantize through the real CLI: an int8 final model that archfuse-eval
reloads to the run's figure, a student distilled from a teacher checkpoint trained in the test, the chain
distill -> prune_channels -> quantize with a teacher trained in the same run, and a missing teacher
stopped before training."""

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import FAST, run_cli, run_dirs, summary

STUDENT = ["model=mlp", "model.hidden_sizes=[32]"]


def eval_metrics(cwd, ckpt: str) -> dict[str, float]:
    proc = run_cli(cwd, f"ckpt={ckpt}", "quiet=true", entry="archfuse.eval")
    return {k: float(v) for k, v in (line.split(": ") for line in proc.stdout.splitlines()[1:] if ": " in line)}


def quantize_and_eval(workdir, *overrides: str, trains: bool = False, model=("model=seed003",), layers: int = 4):
    proc = run_cli(workdir, *FAST, *model, "recipe=quantize", *overrides)
    assert "deprecat" not in proc.stderr.lower() and "Warning" not in proc.stderr, proc.stderr  # nothing reaches the user
    (run,) = run_dirs(workdir)
    s = summary(run)
    (step,) = s["recipe"]
    before, after = step["before"], step["after"]
    assert step["name"] == "quantize" and step["quantized_ops"]["dequantize_per_channel"] == layers
    assert after["size_bytes"] < before["size_bytes"] / 3.5 and after["params"] == before["params"]
    if not trains:  # post-training int8 beside fp32, in the same run (qat trains on, so it may gain)
        assert abs(after["test/acc"] - before["test/acc"]) <= 0.05
    assert s["cost"]["size_bytes"] == after["size_bytes"]  # the run reports the int8 network
    assert s["checkpoint"].endswith("checkpoints/final.ckpt")
    tested = eval_metrics(workdir, s["checkpoint"])
    assert tested["test/acc"] == pytest.approx(s["metrics"]["test/acc"], abs=1e-4)
    assert tested["test/loss"] == pytest.approx(s["metrics"]["test/loss"], abs=1e-4)
    return s


def test_static_int8_reloads_in_archfuse_eval(workdir):
    s = quantize_and_eval(workdir, "recipe.quantize.compile=false", model=STUDENT, layers=2)
    assert s["recipe"][0]["calibration_samples"] == 256  # debug=fast: 256 training images, fewer than 8 batches


@pytest.mark.slow
def test_compiled_static_int8_reloads_in_archfuse_eval(workdir):
    quantize_and_eval(workdir)


@pytest.mark.slow
def test_quantization_aware_training_fine_tunes_then_converts(workdir):
    s = quantize_and_eval(workdir, "recipe.quantize.mode=qat", "recipe.quantize.compile=false", trains=True)
    run = run_dirs(workdir)[0]
    assert "val/acc_best" in s["recipe"][0]["fine_tune"] and (run / "recipe_1_quantize").is_dir()


def test_a_student_distils_from_a_teacher_checkpoint(workdir):
    teacher_dir, student_dir = workdir / "teacher", workdir / "student"
    teacher_dir.mkdir(), student_dir.mkdir()
    run_cli(teacher_dir, *FAST, "model=mlp", "model.hidden_sizes=[256]", "trainer.max_epochs=2")
    (teacher_run,) = run_dirs(teacher_dir)
    teacher = summary(teacher_run)
    proc = run_cli(student_dir, *FAST, *STUDENT, "recipe=distill", f"recipe.distill.teacher={teacher['best_checkpoint']}",
                   "recipe.distill.alpha=0.7", "data.augment=none")
    assert "Warning" not in proc.stderr, proc.stderr
    (run,) = run_dirs(student_dir)
    s = summary(run)
    (step,) = s["recipe"]
    assert step["name"] == "distill" and step["alpha"] == 0.7
    # The teacher's accuracy is reported beside the student's; the student is the costed, saved network.
    assert step["teacher"]["test/acc"] == pytest.approx(teacher["metrics"]["test/acc"], abs=1e-4)
    assert step["teacher"]["params"] == teacher["cost"]["params"] > s["cost"]["params"]
    assert step["teacher_test_acc"] == step["teacher"]["test/acc"]
    assert f"teacher test/acc {step['teacher_test_acc']:.4f}" in proc.stdout  # the printed step line
    events = EventAccumulator(str(run), size_guidance={"scalars": 0})
    events.Reload()
    assert "train/loss_distill_kd" in events.Tags()["scalars"]
    assert eval_metrics(student_dir, s["checkpoint"])["test/acc"] == pytest.approx(s["metrics"]["test/acc"], abs=1e-4)


@pytest.mark.slow
def test_a_chain_distils_from_a_teacher_trained_first_prunes_then_quantizes(workdir):
    run_cli(workdir, *FAST, "model=seed003", "recipe=[distill,prune_channels,quantize]",
            "recipe.distill.teacher_model=mlp", "recipe.quantize.compile=false")
    (run,) = run_dirs(workdir)
    s = summary(run)
    assert [step["name"] for step in s["recipe"]] == ["distill", "prune_channels", "quantize"]
    assert s["recipe"][0]["teacher"]["source"] == "archfuse.models.mlp.MLP"
    assert s["recipe"][0]["teacher"]["test/acc"] > 0.15  # trained, better than chance (0.1)
    for previous, step in zip(s["recipe"], s["recipe"][1:]):  # each step starts from the previous one's model
        assert step["before"]["params"] == previous["after"]["params"]
        assert step["before"]["test/acc"] == pytest.approx(previous["after"]["test/acc"])
    assert s["recipe"][2]["after"]["size_bytes"] < s["recipe"][1]["after"]["size_bytes"] / 3.5
    # archfuse-eval rebuilds the pruned structure, then the int8 graph on it, from the checkpoint alone.
    assert eval_metrics(workdir, s["checkpoint"])["test/acc"] == pytest.approx(s["metrics"]["test/acc"], abs=1e-4)


def test_a_missing_teacher_stops_the_run_before_training(workdir):
    proc = run_cli(workdir, "recipe=distill", "recipe.distill.teacher=/nonexistent/best.ckpt", "quiet=true", check=False)
    assert proc.returncode == 2, proc.stderr
    assert "recipe.distill.teacher: /nonexistent/best.ckpt does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    runs = workdir / "outputs" / "runs"
    assert not runs.exists() or not list(runs.iterdir())
