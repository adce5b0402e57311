"""The extension points carry real runs: test-only recipes and an ensemble strategy, given as a user
would (their own config folder on Hydra's search path, their own module importable from the working
directory), train through the real CLI; their results reload in archfuse-eval."""

import json
import shutil
from pathlib import Path

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import FAST, REPO, run_cli, run_dirs, summary

CONFIGS = {
    "recipe/tag_a.yaml": "_target_: archfuse.recipes.chain.RecipeChain\n"
                         "tag_a: {_target_: contract_plugins.Tag, tag: a, after: true}\n",
    "recipe/tag_b.yaml": "_target_: archfuse.recipes.chain.RecipeChain\n"
                         "tag_b: {_target_: contract_plugins.Tag, tag: b, after: true}\n",
    "recipe/l1.yaml": "_target_: archfuse.recipes.chain.RecipeChain\n"
                      "l1: {_target_: contract_plugins.L1Term, weight: 0.0001}\n",
    "recipe/fine_tune.yaml": "_target_: archfuse.recipes.chain.RecipeChain\n"
                             "fine_tune: {_target_: contract_plugins.FineTune, epochs: 2}\n",
    "recipe/halve.yaml": "_target_: archfuse.recipes.chain.RecipeChain\n"
                         "halve: {_target_: contract_plugins.HalveFirstConv, fine_tune_epochs: 1}\n",
    "ensemble/seeded.yaml": "_target_: contract_plugins.SeededMembers\nseeds: [1, 2]\n",
}


@pytest.fixture
def user_dir(workdir: Path) -> Path:
    """A working directory with the user's plug-in module and their config folder."""
    shutil.copy(REPO / "tests" / "contract_plugins.py", workdir)
    for name, text in CONFIGS.items():
        (workdir / "my_conf" / name).parent.mkdir(parents=True, exist_ok=True)
        (workdir / "my_conf" / name).write_text(text)
    return workdir


def searchpath(user_dir: Path) -> str:
    return f"hydra.searchpath=[file://{user_dir / 'my_conf'}]"


def scalars(log_dir: Path, tag: str) -> list[float]:
    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    events.Reload()
    return [e.value for e in events.Scalars(tag)] if tag in events.Tags()["scalars"] else []


def eval_acc(cwd: Path, ckpt: str) -> float:
    proc = run_cli(cwd, f"ckpt={ckpt}", "quiet=true", entry="archfuse.eval")
    return float(next(line for line in proc.stdout.splitlines() if line.startswith("test/acc:")).split(": ")[1])


def test_a_chain_transforms_adds_loss_terms_and_fine_tunes_in_order(user_dir):
    run_cli(user_dir, *FAST, "model=seed003", "trainer.max_epochs=2", "trainer.limit_val_batches=null", searchpath(user_dir),
            "recipe=[tag_a,tag_b,l1,fine_tune]")
    (run,) = run_dirs(user_dir)
    s = summary(run)
    assert [step["name"] for step in s["recipe"]] == ["tag_a", "tag_b", "fine_tune"]  # l1 has no after-fit step
    assert s["recipe"][0]["outer_to_inner"] == ["b", "a"]  # transforms ran in the chain's order
    assert scalars(run, "train/loss_l1")  # the loss term was logged while training
    fine_tune = s["recipe"][2]
    # The after-fit steps start from the best weights, not the last epoch's.
    assert fine_tune["start_val_acc"] == pytest.approx(s["metrics"]["val/acc_best"], abs=1e-6)
    assert fine_tune["before"]["val/acc"] == pytest.approx(s["metrics"]["val/acc_best"], abs=1e-6)
    # ... and the fine-tune trained exactly 2 more epochs, as its own TensorBoard run.
    assert len(scalars(run / "recipe_3_fine_tune", "val/acc")) == 2
    assert s["checkpoint"].endswith("checkpoints/final.ckpt")
    assert eval_acc(user_dir, s["checkpoint"]) == pytest.approx(s["metrics"]["test/acc"], abs=1e-4)


@pytest.mark.slow
def test_a_network_changed_after_fit_reloads_from_its_checkpoint(user_dir):
    run_cli(user_dir, *FAST, "model=seed003", searchpath(user_dir), "recipe=halve")
    (run,) = run_dirs(user_dir)
    s = summary(run)
    (step,) = s["recipe"]
    assert step["channels_kept"] == 16 and step["after"]["params"] < step["before"]["params"]
    assert s["cost"]["params"] == step["after"]["params"]  # the run reports the changed network
    state = torch.load(s["checkpoint"], map_location="cpu", weights_only=True)["state_dict"]
    assert state["net.features.0.weight"].shape[0] == 16
    # archfuse-eval rebuilds the halved network from the checkpoint alone and gets the run's figure.
    assert eval_acc(user_dir, s["checkpoint"]) == pytest.approx(s["metrics"]["test/acc"], abs=1e-4)
    # As ckpt_path, the final model (no optimizer state) is trained on from its weights.
    again = user_dir / "again"
    again.mkdir()
    shutil.copy(user_dir / "contract_plugins.py", again)
    run_cli(again, *FAST, "model=seed003", searchpath(user_dir), "recipe=halve", f"ckpt_path={s['checkpoint']}")
    (resumed,) = run_dirs(again)
    assert summary(resumed)["recipe"][0]["before"]["params"] == step["after"]["params"]


def test_an_ensemble_fits_its_combiner_and_reloads(user_dir):
    run_cli(user_dir, *FAST, "model=mlp", "model.hidden_sizes=[32]", searchpath(user_dir), "ensemble=seeded")
    (run,) = run_dirs(user_dir)
    s = summary(run)
    weights = s["ensemble"]["weights"]
    assert len(weights) == 2 and sum(weights) == pytest.approx(1.0)
    acc = s["ensemble"]["member_val_acc"]
    assert weights[0] / weights[1] == pytest.approx(acc[0] / acc[1], rel=1e-5)
    state = torch.load(s["checkpoint"], map_location="cpu", weights_only=True)["state_dict"]
    assert torch.allclose(state["net.combiner.weights"], torch.tensor(weights))
    assert eval_acc(user_dir, s["checkpoint"]) == pytest.approx(s["metrics"]["test/acc"], abs=1e-4)


def test_a_multirun_job_returns_its_objective(user_dir):
    record = "+hydra.callbacks.record._target_=contract_plugins.RecordReturns"
    run_cli(user_dir, "-m", *FAST, "model=seed003", "objective=val/loss,[val/acc_best,cost/params]", record)
    runs = run_dirs(user_dir)
    assert len(runs) == 2
    for run in runs:
        s, returned = summary(run), json.loads((run / "returned.json").read_text())
        if s["config"]["objective"] == "val/loss":
            assert returned == pytest.approx(s["metrics"]["val/loss"])
            assert s["objective"] == {"names": ["val/loss"], "directions": ["min"], "values": [returned]}
        else:
            assert returned == pytest.approx([s["metrics"]["val/acc_best"], s["cost"]["params"]])
            assert s["objective"] == {"names": ["val/acc_best", "cost/params"], "directions": ["max", "min"],
                                      "values": returned}


@pytest.mark.slow
def test_after_fit_steps_run_under_ddp_with_the_users_config_folder(user_dir):
    """Every rank re-runs the job with the user's hydra.* overrides (their config folder) and runs the steps."""
    run_cli(user_dir, *FAST, "model=seed003", "trainer=ddp_cpu", searchpath(user_dir), "recipe=[fine_tune,halve]")
    (run,) = run_dirs(user_dir)
    s = summary(run)
    assert [step["name"] for step in s["recipe"]] == ["fine_tune", "halve"]
    assert s["metrics"]["test/samples"] == 360 and s["cost"]["params"] == s["recipe"][1]["after"]["params"]
    assert eval_acc(user_dir, s["checkpoint"]) == pytest.approx(s["metrics"]["test/acc"], abs=1e-4)
