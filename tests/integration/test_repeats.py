"""Repeats over seeds (``seeds=N``), alone and with cross-validation: one TensorBoard run per fit,
mean and sample standard deviation in summary.json, the HPARAMS tab and the printed summary."""

import statistics

import pytest

from conftest import FAST, run_cli, run_dirs, summary
from test_tensorboard import hparams_of_run, last_scalar, load_events


def test_seeds_run_each_seed_and_report_mean_and_std(workdir):
    proc = run_cli(workdir, *FAST, "model=seed003", "seeds=3", "seed=7")
    (run,) = run_dirs(workdir)
    s = summary(run)
    runs = s["seeds"]["runs"]
    assert [r["seed"] for r in runs] == [7, 8, 9]
    accs = [r["test/acc"] for r in runs]
    assert len(set(accs)) > 1  # different seeds, different models
    assert s["metrics"]["test/acc"] == pytest.approx(statistics.fmean(accs))
    assert s["metrics"]["test/acc_std"] == pytest.approx(statistics.stdev(accs))
    assert s["seeds"]["std"]["val/acc_best"] == pytest.approx(statistics.stdev([r["val/acc_best"] for r in runs]))
    for r in runs:  # each seed is its own TensorBoard run with its own checkpoint
        seed_dir = run / f"seed_{r['seed']}"
        assert last_scalar(load_events(seed_dir), "test/acc") == pytest.approx(r["test/acc"], abs=1e-6)
        assert r["checkpoint"] == str(seed_dir / "checkpoints" / "best.ckpt")
    hparams, columns = hparams_of_run(load_events(run))  # the run's own row: means and stds
    assert hparams["seed"] == "mean" and {"test/acc", "test/acc_std", "val/acc_best_std"} <= columns
    assert last_scalar(load_events(run), "test/acc_std") == pytest.approx(s["metrics"]["test/acc_std"], abs=1e-6)
    expected = f"{s['metrics']['test/acc']:.4f} ± {s['metrics']['test/acc_std']:.4f} (mean ± std, 3 seeds)"
    assert expected in proc.stdout


def test_seeds_and_folds_combine(workdir):
    run_cli(workdir, *FAST, "model=seed003", "seeds=2", "cv.folds=2")
    (run,) = run_dirs(workdir)
    s = summary(run)
    assert [(f["seed"], f["fold"]) for f in s["cv"]["folds"]] == [(42, 0), (42, 1), (43, 0), (43, 1)]
    for r in s["seeds"]["runs"]:  # a seed's figure is its mean over folds
        folds = [f["val/acc_best"] for f in s["cv"]["folds"] if f["seed"] == r["seed"]]
        assert r["val/acc_best"] == pytest.approx(statistics.fmean(folds))
        assert (run / f"seed_{r['seed']}" / "fold_1" / "checkpoints" / "best.ckpt").is_file()
    assert s["metrics"]["cv/val_acc_mean"] == pytest.approx(s["metrics"]["val/acc_best"])


def test_seeds_report_each_recipe_step_as_mean_and_std(workdir):
    run_cli(workdir, *FAST, "model=seed003", "seeds=2", "recipe=prune", "recipe.prune.amount=0.6",
            "recipe.prune.fine_tune_epochs=1")
    (run,) = run_dirs(workdir)
    (step,) = summary(run)["recipe"]
    assert step["name"] == "prune" and step["fits"] == 2 and len(step["runs"]) == 2
    per_seed = []
    for seed, fit in zip((42, 43), step["runs"]):  # each fit's report is that seed's own TensorBoard figure
        events = load_events(run / f"seed_{seed}")
        assert last_scalar(events, "recipe/1_prune/after/test/acc") == pytest.approx(fit["after"]["test/acc"], abs=1e-6)
        per_seed.append(fit["after"]["test/acc"])
    assert step["after"]["test/acc"] == pytest.approx(statistics.fmean(per_seed))
    assert step["after_std"]["test/acc"] == pytest.approx(statistics.stdev(per_seed))
    assert step["sparsity"] == pytest.approx(0.6, abs=1e-3) and step["sparsity_std"] == pytest.approx(0.0, abs=1e-6)
    assert step["after"]["params"] == step["before"]["params"]  # unstructured: dense shapes kept
