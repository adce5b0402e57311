"""Every kind of summary.json a real run writes validates against the JSON Schema of archfuse.summary:
a plain run, a recipe chain, an ensemble (loaded from a sweep's best trial through archfuse.sweep_dir),
cross-validation with an ensemble, seeds with a recipe, and a sweep trial (a pruned trial's summary:
tests/integration/test_sweep.py)."""

from pathlib import Path

import jsonschema
import pytest

from archfuse.host import cpu_features
from archfuse.summary import VERSION, read_summary, schema
from archfuse.sweep_dir import top_checkpoints
from conftest import FAST, run_cli, run_dirs

SWEEP = ["-m", "search=width_depth_activation", "hydra.sweeper.seed=0", "hydra.sweeper.n_trials=1"]
# Sections each kind has beyond those every finished run has.
KINDS = {
    "plain": {"checkpoint", "best_checkpoint", "confusion_matrix"},
    "recipe": {"checkpoint", "best_checkpoint", "confusion_matrix"},
    "ensemble": {"ensemble", "checkpoint", "best_checkpoint", "confusion_matrix"},
    "cv": {"cv", "ensemble"},
    "seeds": {"seeds"},
    "sweep_trial": {"checkpoint", "best_checkpoint", "confusion_matrix"},
}
EVERY_RUN = {"version", "config", "choices", "metrics", "training", "data", "cost", "recipe", "versions", "status",
             "objective"}


def _one_run(cwd: Path, *args: str) -> Path:
    run_cli(cwd, *args, *FAST, "trainer.num_threads=1")
    (run,) = run_dirs(cwd)
    return run


@pytest.fixture(scope="module")
def runs(tmp_path_factory, trained_run) -> dict[str, Path]:
    """One run directory of each kind, made once for this file."""
    made = {"plain": trained_run}
    sweep_cwd = tmp_path_factory.mktemp("sweep")
    made["sweep_trial"] = _one_run(sweep_cwd, *SWEEP)
    sweep_dir = made["sweep_trial"].parent.parent
    made["ensemble"] = _one_run(tmp_path_factory.mktemp("ensemble"), "ensemble=mean",
                                f"ensemble.from_sweep={sweep_dir}", "ensemble.top_k=1")
    made["recipe"] = _one_run(tmp_path_factory.mktemp("recipe"), "model=seed003", "recipe=[prune,cut]",
                              "recipe.prune.fine_tune_epochs=0", "recipe.cut.fine_tune_epochs=0")
    made["cv"] = _one_run(tmp_path_factory.mktemp("cv"), "model=seed001", "cv.folds=2", "ensemble=mean",
                          "ensemble.size=2")
    made["seeds"] = _one_run(tmp_path_factory.mktemp("seeds"), "model=seed003", "seeds=2", "recipe=prune",
                             "recipe.prune.fine_tune_epochs=0")
    return made


@pytest.mark.parametrize("kind", list(KINDS))
def test_summary_validates_against_the_schema(runs, kind):
    summary = read_summary(runs[kind])
    jsonschema.Draft202012Validator(schema()).validate(summary)
    assert list(summary)[0] == "version" and summary["version"] == VERSION and summary["status"] == "ok"
    assert set(summary) == EVERY_RUN | KINDS[kind]
    assert summary["training"]["cpu_features"] == list(cpu_features())  # beside the precision it trained in


def test_repeats_and_plug_ins_fill_the_sections_the_schema_describes(runs):
    cv, seeds = read_summary(runs["cv"]), read_summary(runs["seeds"])
    assert [f["fold"] for f in cv["cv"]["folds"]] == [0, 1] and len(cv["ensemble"]["runs"]) == 2
    assert "ensemble/val_acc" in cv["cv"]["mean"] and cv["training"]["fits"] == 2
    assert [r["seed"] for r in seeds["seeds"]["runs"]] == [42, 43]  # from conf/train.yaml's seed
    assert seeds["recipe"][0]["fits"] == 2 and "test/acc_std" in seeds["metrics"]
    names = [step["name"] for step in read_summary(runs["recipe"])["recipe"]]
    assert names == ["prune", "cut"]


def test_the_sweep_directory_reader_finds_the_trials_checkpoint(runs):
    trial = runs["sweep_trial"]
    (checkpoint,) = top_checkpoints(trial.parent.parent, 1)
    assert checkpoint == read_summary(trial)["checkpoint"]
    assert read_summary(runs["ensemble"])["ensemble"]["member_checkpoints"] == [checkpoint]
