"""Optuna sweeps through the real CLI: studies in SQLite read back with optuna, continued by the same
command, repeated points reused, an ensemble of the best trials, pruned, failed and NaN trials, bad
input; slow: the grid with cross-validation, a Pareto front, joblib batches."""

import json
import subprocess
import sys
import time
from pathlib import Path

import jsonschema
import optuna
import pytest
import yaml

from archfuse.summary import schema
from conftest import FAST, cli_env, run_cli, summary
from sweep_study import load, rows, sweep_dir

WDA = ["-m", "search=width_depth_activation", "hydra.sweeper.seed=0", *FAST, "trainer.num_threads=1"]


@pytest.fixture(scope="module")
def wda(tmp_path_factory):
    """search=width_depth_activation with 2 trials, then the same command with n_trials=3 (continued)."""
    cwd = tmp_path_factory.mktemp("wda")
    first = run_cli(cwd, *WDA, "hydra.sweeper.n_trials=2")
    directory = sweep_dir(cwd)
    before = {p.parent.name: p.stat().st_mtime_ns for p in (directory / "trials").glob("*/summary.json")}
    second = run_cli(cwd, *WDA, "hydra.sweeper.n_trials=3")
    return cwd, directory, first, second, before


def test_sweep_study_is_stored_and_read_back(wda):
    cwd, directory, first, _, _ = wda
    assert directory == cwd / "outputs" / "sweeps" / "width_depth_activation+debug-fast+trainer.num_threads-1"
    study = load(directory)
    trials = study.get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE]
    for t in trials:
        assert set(t.params) == {"model.width", "model.depth", "model.activation"}
        assert t.params["model.width"] in (8, 16, 32, 64) and 1 <= t.params["model.depth"] <= 4
        run = directory / t.user_attrs["run_dir"]
        assert run.name.startswith(f"{t.number:03d}_model.width-{t.params['model.width']}+")
        s = summary(run)
        assert s["status"] == "ok" and s["objective"]["names"] == ["val/acc_best"]
        assert t.value == pytest.approx(s["metrics"]["val/acc_best"]) == pytest.approx(s["objective"]["values"][0])
        assert s["config"]["model"]["width"] == t.params["model.width"]
        assert s["config"]["model"]["_target_"] == "archfuse.models.convnet.ConvNet"
    table = rows(directory)
    assert [r["number"] for r in table] == ["0", "1", "2"]
    assert {r["state"] for r in table} == {"COMPLETE"}
    assert float(table[0]["val/acc_best"]) == pytest.approx(trials[0].value)
    assert int(table[0]["cost/params"]) == summary(directory / table[0]["run_dir"])["cost"]["params"]
    best = yaml.safe_load((directory / "best.yaml").read_text())
    top = max(trials, key=lambda t: t.value)
    assert best["trial"] == top.number and best["values"]["val/acc_best"] == pytest.approx(top.value)
    assert f"model.width={top.params['model.width']}" in best["overrides"]
    assert best["command"].startswith("archfuse-train search=width_depth_activation debug=fast")
    for plot in ("history", "importances", "parallel_coordinates"):
        assert (directory / f"{plot}.png").stat().st_size > 1000
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    plots = EventAccumulator(str(directory / "tensorboard" / "plots"), size_guidance={"images": 0})
    plots.Reload()
    assert plots.Tags()["images"] == ["sweep/history", "sweep/importances", "sweep/parallel_coordinates"]
    assert [p.name for p in (directory / "tensorboard").iterdir()] == ["plots"]
    # Each trial is one row of the HPARAMS tab: its own run's, holding the searched keys among its columns.
    sessions = {}
    for folder in {events.parent for events in directory.rglob("events.out.tfevents.*")}:
        acc = EventAccumulator(str(folder))
        acc.Reload()
        try:
            content = acc.PluginTagToContent("hparams")
        except KeyError:  # no HPARAMS data in this folder (the plots)
            continue
        sessions[folder] = plugin_data_pb2.HParamsPluginData.FromString(
            content["_hparams_/session_start_info"]).session_start_info
    assert sorted(sessions) == sorted(directory / t.user_attrs["run_dir"] for t in trials)
    assert all({"model.width", "model.depth", "model.activation"} <= set(s.hparams) for s in sessions.values())
    assert "[sweep] top trials (val/acc_best max):" in first.stdout
    assert "2/2 trials (2 complete, 0 pruned, 0 failed; 2 run now" in first.stdout


def test_same_command_continues_the_study(wda):
    _, directory, _, second, before = wda
    assert "3/3 trials (3 complete, 0 pruned, 0 failed; 1 run now" in second.stdout
    after = {p.parent.name: p.stat().st_mtime_ns for p in (directory / "trials").glob("*/summary.json")}
    assert len(after) == 3 and all(after[name] == stamp for name, stamp in before.items())  # never rewritten


def test_dashboard_reads_the_study(wda):
    """optuna-dashboard's server on 127.0.0.1 serves the study through its HTTP API."""
    import socket
    import urllib.request

    _, directory, *_ = wda
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-c", "import sys, optuna_dashboard; optuna_dashboard.run_server("
                               "sys.argv[1], host='127.0.0.1', port=int(sys.argv[2]))",
                               f"sqlite:///{directory / 'study.db'}", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as r:
                    studies = json.loads(r.read())["study_summaries"]
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise AssertionError("optuna-dashboard did not answer")
        (study,) = studies
        assert study["study_name"] == directory.name
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies/{study['study_id']}", timeout=5) as r:
            detail = json.loads(r.read())
        assert [t["state"] for t in detail["trials"]] == ["Complete"] * 3
        assert {p["name"] for p in detail["trials"][0]["params"]} == {"model.width", "model.depth", "model.activation"}
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.mark.slow
def test_a_repeated_point_reuses_its_result(workdir):
    """A sampler asking for parameters a completed trial ran gets its result without a run (runs are seeded)."""
    args = ["-m", *FAST, "model=mlp", "model.hidden_sizes=[16]", "hydra/sweeper=optuna", "hydra.sweeper.study_name=r",
            "hydra.sweeper.sampler=random", "model.activation=choice(relu)", "trainer.num_threads=1"]
    proc = run_cli(workdir, *args, "hydra.sweeper.n_trials=3")
    directory = sweep_dir(workdir)
    trials = load(directory).get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 3 and len({t.value for t in trials}) == 1
    assert [t.user_attrs.get("repeat_of") for t in trials] == [None, 0, 0]
    assert [p.name for p in (directory / "trials").iterdir()] == ["000_model.activation-relu"]  # one run
    assert "trial 2 repeats trial 0 (model.activation=relu): its result val/acc_best=" in proc.stdout
    assert "3/3 trials (3 complete, 0 pruned, 0 failed; 1 run now" in proc.stdout
    assert [r["error"] for r in rows(directory)][1] == "repeats trial 0: its result, not run again"
    assert yaml.safe_load((directory / "best.yaml").read_text())["trial"] == 0
    # The study continued with another key set: the same point is another run, not a repeat.
    again = run_cli(workdir, *args, "trainer.max_epochs=2", "hydra.sweeper.n_trials=4")
    assert "4/4 trials (4 complete, 0 pruned, 0 failed; 1 run now" in again.stdout
    assert load(directory).get_trials()[3].user_attrs.get("repeat_of") is None
    assert len(list((directory / "trials").iterdir())) == 2


@pytest.mark.slow
def test_an_ensemble_of_the_sweeps_best_trials(wda, workdir):
    """ensemble.from_sweep loads the top_k trials by val/acc_best, also from a moved sweep directory."""
    import shutil

    _, directory, *_ = wda
    moved = workdir / "moved_sweep"
    shutil.copytree(directory, moved)
    ranked = sorted(load(directory).get_trials(), key=lambda t: -t.value)  # stable: ties keep trial order
    run_cli(workdir, *FAST, "ensemble=mean", f"ensemble.from_sweep={moved}", "ensemble.top_k=2")
    (run,) = [p for p in workdir.joinpath("outputs", "runs").rglob("summary.json")]
    s = summary(run.parent)
    expected = [moved / t.user_attrs["run_dir"] / "checkpoints" / "best.ckpt" for t in ranked[:2]]
    assert s["ensemble"]["member_checkpoints"] == [str(p) for p in expected]
    assert s["training"]["epochs"] == 0  # loaded, not retrained
    trial_test = [summary(directory / t.user_attrs["run_dir"])["metrics"]["test/acc"] for t in ranked[:2]]
    assert s["ensemble"]["test"]["member_acc"] == pytest.approx(trial_test, abs=1e-6)

    too_many = run_cli(workdir, "ensemble=mean", f"ensemble.from_sweep={moved}", "ensemble.top_k=4", "quiet=true",
                       check=False)
    assert too_many.returncode == 2 and "Traceback" not in too_many.stderr
    assert f"ensemble.top_k: is 4 but the sweep in {moved} has 3 completed trials with their own run" in \
        too_many.stderr
    not_a_sweep = run_cli(workdir, "ensemble=weighted", f"ensemble.from_sweep={workdir}", "quiet=true", check=False)
    assert not_a_sweep.returncode == 2 and f"ensemble.from_sweep: {workdir} is not a sweep directory" in \
        not_a_sweep.stderr
    assert len(list(workdir.joinpath("outputs", "runs").rglob("summary.json"))) == 1  # no run left by the errors


@pytest.mark.slow
def test_mlp_layers_searches_layers_and_neurons(workdir):
    run_cli(workdir, "-m", "search=mlp_layers", *FAST, "trainer.num_threads=1", "hydra.sweeper.n_trials=1",
            "hydra.sweeper.seed=0")
    directory = sweep_dir(workdir)
    (trial,) = load(directory).get_trials()
    config = summary(directory / trial.user_attrs["run_dir"])["config"]
    assert config["model"]["_target_"] == "archfuse.models.mlp.MLP"
    assert config["model"]["hidden_sizes"] == [trial.params["mlp.neurons"]] * trial.params["mlp.layers"]
    assert config["model"]["activation"] == trial.params["model.activation"]


def test_pruned_trial_is_recorded_and_says_so(workdir):
    """The median pruner stops a hopeless learning rate after its first epoch (grid order fixed by the seed)."""
    proc = run_cli(workdir, "-m", *FAST, "trainer.num_threads=1", "model=mlp", "hydra/sweeper=optuna",
                   "optimizer.lr=choice(0.003,0.0000001)", "hydra.sweeper.sampler=grid", "hydra.sweeper.seed=1",
                   "trainer.max_epochs=2", "hydra.sweeper.pruner_args.n_startup_trials=1",
                   "hydra.sweeper.pruner_args.n_warmup_steps=0")
    directory = sweep_dir(workdir)
    trials = load(directory).get_trials()
    assert [(t.state.name, t.params["optimizer.lr"]) for t in trials] == [("COMPLETE", 0.003), ("PRUNED", 1e-7)]
    pruned = summary(directory / trials[1].user_attrs["run_dir"])
    assert pruned["status"] == "pruned" and pruned["metrics"]["epoch"] == 0
    jsonschema.Draft202012Validator(schema()).validate(pruned)  # a pruned trial's summary has its own shape
    assert trials[1].intermediate_values == {0: pytest.approx(pruned["metrics"]["val/acc_best"])}
    assert len(trials[0].intermediate_values) == 2  # one report per epoch
    assert "[sweep] trial 1 PRUNED trial 1 pruned at epoch 0 (reported val/acc_best: 0." in proc.stdout
    assert rows(directory)[1]["state"] == "PRUNED"
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import plugin_data_pb2

    acc = EventAccumulator(str(directory / trials[1].user_attrs["run_dir"]))
    acc.Reload()  # a pruned trial is one row of the HPARAMS tab too, as its own run
    start = plugin_data_pb2.HParamsPluginData.FromString(
        acc.PluginTagToContent("hparams")["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["status"].string_value == "pruned" and start.hparams["optimizer.lr"].number_value == 1e-7


def test_failed_and_nan_trials_are_recorded_and_the_sweep_goes_on(workdir):
    proc = run_cli(workdir, "-m", *FAST, "trainer.num_threads=1", "model=mlp", "hydra/sweeper=optuna",
                   "optimizer.lr=choice(0.003,1e30)", "model.activation=choice(relu,swish)", "objective=val/loss",
                   "hydra.sweeper.sampler=grid", "hydra.sweeper.pruner=none", "hydra.sweeper.max_failure_rate=0.8")
    assert "Traceback" not in proc.stderr
    directory = sweep_dir(workdir)
    trials = {(t.params["optimizer.lr"], t.params["model.activation"]): t for t in load(directory).get_trials()}
    assert trials[(0.003, "relu")].state.name == "COMPLETE"
    nan = trials[(1e30, "relu")]
    assert nan.state.name == "FAIL" and nan.user_attrs["error"] == "objective val/loss is [nan] (not a finite number)"
    for lr in (0.003, 1e30):
        bad = trials[(lr, "swish")]
        assert bad.state.name == "FAIL" and bad.user_attrs["error"].startswith("model.activation: unknown activation")
        assert not (directory / bad.user_attrs["run_dir"]).exists()  # bad input leaves no run directory
        assert f"  failed trial {bad.number}: model.activation: unknown activation 'swish'" in proc.stderr
    assert "4/4 trials (1 complete, 0 pruned, 3 failed" in proc.stdout
    assert {r["state"] for r in rows(directory)} == {"COMPLETE", "FAIL"}


def test_too_many_failures_stop_the_sweep(workdir):
    proc = run_cli(workdir, "-m", *FAST, "model=mlp", "hydra/sweeper=optuna", "model.activation=choice(swish,mish)",
                   "hydra.sweeper.n_trials=4", "hydra.sweeper.max_failure_rate=0.25", check=False)
    assert proc.returncode == 1
    assert ("archfuse-train: error: the sweep stopped: 2 of 4 trials failed, more than "
            "hydra.sweeper.max_failure_rate=0.25") in proc.stderr
    assert len(load(sweep_dir(workdir)).get_trials()) == 2


BAD = [
    (["hydra.sweeper.sampler=bayes"], "hydra.sweeper.sampler: unknown sampler 'bayes'; choose one of: tpe, random"),
    (["hydra.sweeper.pruner=early"], "hydra.sweeper.pruner: unknown pruner 'early'"),
    (["model.width=range(1,"], "model.width: malformed override 'model.width=range(1,'"),
    (["hydra.sweeper.params.model.widht=choice(8,16)"], "model.widht: unknown key; model accepts: activation,"),
    (["hydra.sweeper.storage=postgresql+psycopg://nobody@127.0.0.1:9/none"],
     "hydra.sweeper.storage: cannot open postgresql+psycopg://nobody@127.0.0.1:9/none"),
    (["objective=[val/acc_best,cost/params]"], "hydra.sweeper.pruner: Optuna cannot prune a study with several objectives"),
    (["search=grid", "model.width=interval(8,64)"], "hydra.sweeper.params.model.width: the grid sampler needs"),
    (["objective=[val/acc_best,val/loss]", "hydra.sweeper.scalarize=0.1"],
     "hydra.sweeper.scalarize: needs objective=[METRIC,cost/NAME] with the cost minimised"),
]


@pytest.mark.parametrize("overrides, message", BAD, ids=[m.split(":")[0] + str(i) for i, (_, m) in enumerate(BAD)])
def test_bad_sweep_input_is_one_clear_error(workdir, overrides, message):
    proc = run_cli(workdir, "-m", "search=width_depth_activation", *FAST, *overrides, check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert f"archfuse-train: error: {message}" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert not (workdir / "outputs").exists() or not list((workdir / "outputs").rglob("*.db"))
    assert not (workdir / "outputs" / "sweeps").exists() or not list((workdir / "outputs" / "sweeps").iterdir())


@pytest.mark.slow
def test_grid_with_cross_validation_runs_every_cell(workdir):
    proc = run_cli(workdir, "-m", "search=grid", "cv.folds=2", *FAST, "trainer.num_threads=1",
                   "hydra.sweeper.params.model.width=choice(8)", "hydra.sweeper.params.model.depth=choice(1)",
                   "model.activation=choice(tanh,relu)")
    directory = sweep_dir(workdir)
    trials = load(directory).get_trials()
    assert sorted(t.params["model.activation"] for t in trials) == ["relu", "tanh"]
    for t in trials:
        s = summary(directory / t.user_attrs["run_dir"])
        assert t.value == pytest.approx(s["metrics"]["cv/val_acc_mean"]) and len(s["cv"]["folds"]) == 2
    assert "2/2 trials (2 complete" in proc.stdout


@pytest.mark.slow
def test_pareto_front_with_nsga2(workdir):
    proc = run_cli(workdir, "-m", "search=pareto", *FAST, "trainer.num_threads=1", "hydra.sweeper.n_trials=4",
                   "hydra.sweeper.seed=0", "hydra.sweeper.constraints={cost/params: 50000}")
    directory = sweep_dir(workdir)
    study = load(directory)
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    best = yaml.safe_load((directory / "best.yaml").read_text())
    front = {t.number for t in study.best_trials}
    assert {e["trial"] for e in best["pareto_front"]} == front
    assert all(set(e["values"]) == {"val/acc_best", "cost/params"} for e in best["pareto_front"])
    assert (directory / "pareto_front.png").stat().st_size > 1000
    for t in study.get_trials():  # the budget as Optuna's constraint: params - 50000 <= 0 is feasible
        assert t.user_attrs["constraints"] == [t.values[1] - 50000]
    assert "[sweep] Pareto front (val/acc_best max, cost/params min):" in proc.stdout


@pytest.mark.slow
def test_n_jobs_batches_go_to_the_joblib_launcher(workdir):
    proc = run_cli(workdir, *WDA, "hydra.sweeper.n_trials=2", "hydra.sweeper.n_jobs=2", "hydra/launcher=joblib",
                   "hydra.launcher.n_jobs=2")
    directory = sweep_dir(workdir)
    trials = load(directory).get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "COMPLETE"]
    assert "[sweep] trial 0 starts" in proc.stdout and "[sweep] trial 1 starts" in proc.stdout
    first, second = trials
    assert second.datetime_start < first.datetime_complete  # the two ran at the same time


@pytest.mark.slow
def test_two_workers_share_one_postgresql_study(workdir):
    """A real PostgreSQL server (pgserver), two sweep processes at once on one study: every trial run
    exactly once, none lost, n_trials in all."""
    pgserver = pytest.importorskip("pgserver")
    server = pgserver.get_server(str(workdir / "pg"), cleanup_mode="stop")
    try:
        server.psql("CREATE DATABASE sweeps;")
        url = server.get_uri().replace("postgresql://", "postgresql+psycopg://").replace("/postgres?", "/sweeps?")
        args = ["-m", "search=width_depth_activation", *FAST, "trainer.num_threads=1", "hydra.sweeper.n_trials=5",
                "hydra.sweeper.study_name=shared", f"hydra.sweeper.storage='{url}'"]
        workers = [subprocess.Popen([sys.executable, "-m", "archfuse.train", *args], cwd=workdir, env=cli_env(),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outs = [w.communicate(timeout=600) for w in workers]
        assert [w.returncode for w in workers] == [0, 0], [o[1][-2000:] for o in outs]
        study = optuna.load_study(study_name="shared", storage=url)
        ran = [t for t in study.get_trials() if not t.user_attrs.get("over_budget")]
        assert [t.state.name for t in ran] == ["COMPLETE"] * 5  # n_trials honoured, none lost
        runs = [t for t in ran if "repeat_of" not in t.user_attrs]  # a repeated point reuses its run
        dirs = [t.user_attrs["run_dir"] for t in runs]
        assert len(set(dirs)) == len(runs) >= 1  # none run twice
        assert all(t.user_attrs["run_dir"] in dirs for t in ran if t not in runs)
        on_disk = sorted(p.parent.name for p in (workdir / "outputs" / "sweeps" / "shared" / "trials").glob("*/summary.json"))
        assert on_disk == sorted(Path(d).name for d in dirs)
        assert all("run now" in o[0] for o in outs) and sum(int(o[0].split(" run now")[0].split("; ")[-1])
                                                            for o in outs) == len(runs)  # both worked
    finally:
        server.cleanup()


@pytest.mark.slow
def test_ddp_trials_report_from_rank_zero_and_prune_every_rank(workdir):
    """trainer=ddp_cpu in a sweep: both ranks train the trial, rank 0 alone reports (one value per
    epoch), and a pruned trial stops on every rank."""
    proc = run_cli(workdir, "-m", *FAST, "model=mlp", "trainer=ddp_cpu", "hydra/sweeper=optuna",
                   "optimizer.lr=choice(0.003,0.0000001)", "hydra.sweeper.sampler=grid", "hydra.sweeper.seed=1",
                   "trainer.max_epochs=2", "hydra.sweeper.pruner_args.n_startup_trials=1",
                   "hydra.sweeper.pruner_args.n_warmup_steps=0")
    directory = sweep_dir(workdir)
    trials = load(directory).get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE", "PRUNED"]
    assert list(trials[0].intermediate_values) == [0, 1] and list(trials[1].intermediate_values) == [0]
    assert sorted(p.name[:3] for p in (directory / "trials").iterdir()) == ["000", "001"]
    assert summary(directory / trials[1].user_attrs["run_dir"])["status"] == "pruned"
    assert "2/2 trials (1 complete, 1 pruned" in proc.stdout


@pytest.mark.slow
def test_scalarised_accuracy_and_cost_can_be_pruned(workdir):
    """search=pareto with hydra.sweeper.scalarize: one objective, val/acc_best - lambda * cost/params, pruned
    on the same penalised value at every epoch."""
    run_cli(workdir, "-m", "search=pareto", *FAST, "trainer.num_threads=1", "hydra.sweeper.pruner=median",
            "hydra.sweeper.scalarize=1e-6", "hydra.sweeper.n_trials=3", "hydra.sweeper.seed=0", "trainer.max_epochs=2",
            "hydra.sweeper.pruner_args.n_startup_trials=1", "hydra.sweeper.pruner_args.n_warmup_steps=0")
    directory = sweep_dir(workdir)
    assert directory.name.endswith("scalarize-1e-06")
    trials = load(directory).get_trials()
    assert trials[0].state.name == "COMPLETE"
    parts = trials[0].user_attrs["objectives"]
    assert trials[0].value == pytest.approx(parts["val/acc_best"] - 1e-6 * parts["cost/params"])
    assert trials[0].intermediate_values[1] == pytest.approx(trials[0].value)
    assert "PRUNED" in {t.state.name for t in trials[1:]}
