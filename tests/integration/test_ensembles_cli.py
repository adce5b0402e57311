"""Ensemble runs through the real CLI: members trained together, of several architectures, or loaded
from earlier runs; their checkpoints reload in archfuse-eval; bad input stops before training."""

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import FAST, run_cli, run_dirs, summary


def eval_acc(cwd, ckpt: str) -> float:
    proc = run_cli(cwd, f"ckpt={ckpt}", "quiet=true", entry="archfuse.eval")
    return float(next(line for line in proc.stdout.splitlines() if line.startswith("test/acc:")).split(": ")[1])


@pytest.fixture(scope="module")
def weighted_run(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("weighted")
    run_cli(cwd, *FAST, "model=seed001", "ensemble=weighted", "ensemble.size=3", "trainer.num_threads=1")
    (run,) = run_dirs(cwd)
    return cwd, run


def test_weighted_members_trained_together_and_reloaded(weighted_run):
    cwd, run = weighted_run
    s = summary(run)
    e = s["ensemble"]
    assert e["members"] == 3 and len(e["val"]["member_acc"]) == 3 and len(e["test"]["member_acc"]) == 3
    weights = e["fitted"]["weights"]
    assert len(weights) == 3 and sum(weights) == pytest.approx(1.0, abs=1e-5)
    assert e["fitted"]["chosen"] in ("best_member", "mean", "fitted")  # by 5-fold cross-validation on validation
    if e["fitted"]["chosen"] == "fitted":
        assert e["fitted"]["val_nll"] <= e["fitted"]["val_nll_uniform"] + 1e-6  # the fit lowered the log-loss
    assert e["test"]["acc"] == pytest.approx(s["metrics"]["test/acc"], abs=1e-6)
    assert e["test"]["gain_over_best"] == pytest.approx(e["test"]["acc"] - max(e["test"]["member_acc"]))
    assert s["metrics"]["ensemble/val_acc"] == e["val"]["acc"]
    # Members trained with their own seeds: they differ.
    assert len(set(e["val"]["member_acc"])) > 1 or max(map(max, e["disagreement"])) > 0
    # The fitted weights are a buffer of the checkpoint, and archfuse-eval reproduces the run's test accuracy.
    state = torch.load(s["checkpoint"], map_location="cpu", weights_only=True)["state_dict"]
    assert state["net.combiner.weights"].tolist() == pytest.approx(weights)
    assert eval_acc(cwd, s["checkpoint"]) == pytest.approx(s["metrics"]["test/acc"], abs=1e-4)
    # TensorBoard: the ensemble's figures and the fitted weights as scalars
    events = EventAccumulator(str(run), size_guidance={"scalars": 0})
    events.Reload()
    tags = events.Tags()["scalars"]
    for tag in ("ensemble/val_acc", "ensemble/val_gain_over_best", "ensemble/test_acc", "ensemble/mean_disagreement",
                "ensemble/test_acc_member_2", "ensemble/weights_0", "ensemble/weights_2"):
        assert tag in tags
    assert events.Scalars("ensemble/weights_0")[-1].value == pytest.approx(weights[0], abs=1e-6)


def test_members_of_three_architectures_vote(workdir):
    run_cli(workdir, *FAST, "ensemble=vote", "ensemble.members=[seed001,seed003,{name:mlp,hidden_sizes:[32]}]",
            "trainer.num_threads=1")
    (run,) = run_dirs(workdir)
    s = summary(run)
    assert s["config"]["ensemble"]["members"][2] == {"name": "mlp", "hidden_sizes": [32]}
    state = torch.load(s["checkpoint"], map_location="cpu", weights_only=True)["state_dict"]
    assert "net.members.0.features.0.weight" in state and "net.members.2.net.1.weight" in state
    assert state["net.members.2.net.1.weight"].shape == (32, 784)
    assert s["ensemble"]["test"]["acc"] == pytest.approx(s["metrics"]["test/acc"], abs=1e-6)


@pytest.mark.slow
def test_members_from_checkpoints_are_not_retrained(workdir, weighted_run, trained_run):
    _, ensemble = weighted_run
    single = trained_run / "checkpoints" / "best.ckpt"  # a seed003 run
    ensemble_ckpt = summary(ensemble)["checkpoint"]  # an ensemble is a member like any model
    run_cli(workdir, *FAST, "ensemble=weighted", f"ensemble.checkpoints=[{single},{ensemble_ckpt}]")
    (run,) = run_dirs(workdir)
    s = summary(run)
    assert s["training"]["epochs"] == 0
    member_acc = s["ensemble"]["test"]["member_acc"]
    assert member_acc[0] == pytest.approx(summary(trained_run)["metrics"]["test/acc"], abs=1e-6)
    assert member_acc[1] == pytest.approx(summary(ensemble)["metrics"]["test/acc"], abs=1e-6)
    assert eval_acc(workdir, s["checkpoint"]) == pytest.approx(s["metrics"]["test/acc"], abs=1e-4)


@pytest.mark.parametrize("overrides, message", [
    (["ensemble=weighted", "ensemble.size=0"], "ensemble.size: must be a positive integer"),
    pytest.param(["ensemble=vote", "ensemble.size=2", "ensemble.weights=[1,2,3]"],
                 "ensemble.weights: has 3 values but the ensemble has 2 members", marks=pytest.mark.slow),
    (["ensemble=mean", "+ensemble.member=[seed003]"], "ensemble.member: unknown key; ensemble accepts:"),
    (["ensemble=weighted", "ensemble.checkpoints=[/nonexistent/a.ckpt]"],
     "ensemble.checkpoints[0]: /nonexistent/a.ckpt does not exist"),
    pytest.param(["ensemble=stack", "ensemble.estimator._target_=sklearn.ensemble.RandomForestClassifier",
                  "~ensemble.estimator.C", "~ensemble.estimator.max_iter"],
                 "ensemble.estimator: RandomForestClassifier is not a linear classifier", marks=pytest.mark.slow),
], ids=["size", "weights", "key", "missing_checkpoint", "non_linear_stacker"])
def test_bad_ensemble_input_is_one_clear_error(workdir, overrides, message):
    proc = run_cli(workdir, *overrides, "quiet=true", check=False)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert not (workdir / "outputs" / "runs").exists() or not list((workdir / "outputs" / "runs").iterdir())


def test_a_checkpoint_of_other_data_is_refused(workdir, trained_run):
    best = trained_run / "checkpoints" / "best.ckpt"
    proc = run_cli(workdir, "ensemble=mean", f"ensemble.checkpoints=[{best}]", "data.seed=5", "quiet=true",
                   check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert (f"ensemble.checkpoints[0]: {best} was trained on other data (seed=0) than this run (seed=5)"
            in proc.stderr)


STRATEGIES = {
    "cascade": ["ensemble.members=[seed001,seed003]"],
    "stack": ["model=seed001", "ensemble.size=2"],
    "bagging": ["model=seed001", "ensemble.size=2", "ensemble.sampling=shards", "ensemble.combine=stack"],
    "concat": ["ensemble.members=[seed001,mlp]"],
}


@pytest.mark.parametrize("strategy", [pytest.param(s, marks=() if s == "cascade" else pytest.mark.slow)
                                      for s in STRATEGIES])
def test_every_strategy_saves_what_it_fitted_and_reloads(workdir, strategy):
    run_cli(workdir, *FAST, f"ensemble={strategy}", *STRATEGIES[strategy], "trainer.num_threads=1")
    (run,) = run_dirs(workdir)
    s = summary(run)
    e = s["ensemble"]
    assert e["strategy"].lower() == strategy and e["test"]["acc"] == pytest.approx(s["metrics"]["test/acc"], abs=1e-6)
    state = torch.load(s["checkpoint"], map_location="cpu", weights_only=True)["state_dict"]
    for name, value in e["tensors"].items():
        assert torch.allclose(state[f"net.combiner.{name}"].float(), torch.tensor(value).float())
    if strategy == "cascade":
        assert e["fitted"]["macs"][0] < e["fitted"]["macs"][1]  # seed001 is the cheaper: it answers first
        assert sum(e["fitted"]["test_stage_shares"]) == pytest.approx(1.0)
    if strategy == "concat":
        assert "net.head.weight" in state
    if strategy == "bagging":  # members on disjoint shards, a meta-learner fitted on half of validation
        assert e["fitted"]["share_of_training_images_seen"] == pytest.approx([0.5, 0.5], abs=0.1)
        assert e["fitted"]["fit_samples"] > 0 and abs(e["fitted"]["fit_samples"] - e["fitted"]["holdout_samples"]) <= 1
        if e["fitted"]["chosen"] == "fitted":
            assert not torch.allclose(state["net.combiner.coef"], torch.eye(10).repeat(1, 2) / 2)  # not the mean
        else:  # a fallback, chosen on the held-out half of validation
            assert torch.equal(state["net.combiner.coef"], chosen_stack(e["fitted"], 2, 10)["coef"])
    assert eval_acc(workdir, s["checkpoint"]) == pytest.approx(s["metrics"]["test/acc"], abs=1e-4)


def chosen_stack(fitted: dict, k: int, classes: int) -> dict:
    """The stack's tensors of the fallback the run chose (best_member or mean)."""
    from archfuse.ensembles.stack import mean_stack_tensors, member_stack_tensors

    if fitted["chosen"] == "best_member":
        return member_stack_tensors(fitted["candidates"]["best_member"]["member"], k, classes)
    return mean_stack_tensors(k, classes)


def test_a_stack_of_unequal_members_is_chosen_on_held_out_validation(workdir):
    """A strong member and a weak one: the stack keeps the fitted meta-learner only if it beats the best
    member and the mean on the half of validation it was not fitted on; summary.json says which and why."""
    run_cli(workdir, *FAST, "trainer.max_epochs=3", "data.train_subset=null", "ensemble=stack",
            "ensemble.members=[seed003,{name:mlp,hidden_sizes:[4]}]", "trainer.num_threads=1")
    (run,) = run_dirs(workdir)
    s = summary(run)
    e, fitted = s["ensemble"], s["ensemble"]["fitted"]
    assert min(e["val"]["member_acc"]) < max(e["val"]["member_acc"]) - 0.3  # clearly unequal
    assert set(fitted["candidates"]) == {"best_member", "mean", "fitted"} and fitted["why"]
    assert fitted["scored_on"] == f"held-out validation ({fitted['holdout_samples']} images)"
    assert fitted["holdout_val_acc"] == max(c["val_acc"] for c in fitted["candidates"].values())
    assert fitted["C"] in (0.01, 0.1, 1.0, 10.0) and fitted["inner_cv"]["folds"] == 5
    state = torch.load(s["checkpoint"], map_location="cpu", weights_only=True)["state_dict"]
    if fitted["chosen"] != "fitted":
        assert torch.equal(state["net.combiner.coef"], chosen_stack(fitted, 2, 10)["coef"])
    assert e["test"]["acc"] >= max(e["test"]["member_acc"]) - 0.03  # not below the best member beyond noise
    assert eval_acc(workdir, s["checkpoint"]) == pytest.approx(s["metrics"]["test/acc"], abs=1e-4)


@pytest.mark.slow
def test_stacking_on_out_of_fold_predictions(workdir):
    run_cli(workdir, *FAST, "ensemble=stack", "model=seed001", "ensemble.size=2", "ensemble.oof_folds=2")
    (run,) = run_dirs(workdir)
    s = summary(run)
    fitted = s["ensemble"]["fitted"]
    # every image of the train+val pool (1437 digits) predicted once, by members trained without it
    assert fitted["oof_folds"] == 2 and fitted["fit_samples"] == 1437
    assert (run / "stack_oof_fold_0").is_dir() and (run / "stack_oof_fold_1").is_dir()
    assert eval_acc(workdir, s["checkpoint"]) == pytest.approx(s["metrics"]["test/acc"], abs=1e-4)
