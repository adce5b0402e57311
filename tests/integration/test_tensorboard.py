"""What a reader sees in TensorBoard: event files read back, a real server's HTTP API, CV runs."""

import json
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from tensorboard.backend.event_processing import event_accumulator as ea
from tensorboard.plugins.hparams import metadata as hp_metadata

from conftest import FAST, cli_env, run_cli, run_dirs, summary

SCALARS = ("train/loss", "val/acc", "val/acc_best", "test/acc", "cost/params", "cost/macs", "cost/latency_ms")
METRIC_COLUMNS = {"val/acc_best", "test/acc", "cost/params", "cost/macs", "cost/latency_ms"}
ALL_STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]


# -- helpers ---------------------------------------------------------------------------------------

def load_events(log_dir: Path) -> ea.EventAccumulator:
    """Every event file directly in ``log_dir`` (one TensorBoard run), nothing dropped by sampling."""
    acc = ea.EventAccumulator(str(log_dir), size_guidance={ea.SCALARS: 0, ea.TENSORS: 0, ea.IMAGES: 0})
    acc.Reload()
    return acc


def last_scalar(acc: ea.EventAccumulator, tag: str) -> float:
    return acc.Scalars(tag)[-1].value


def hparams_of_run(acc: ea.EventAccumulator) -> tuple[dict, set[str]]:
    """(hparams of the session, metric column tags of the experiment) from the HPARAMS plugin data."""
    content = acc.PluginTagToContent("hparams")
    ssi = hp_metadata.parse_session_start_info_plugin_data(content[hp_metadata.SESSION_START_INFO_TAG])
    exp = hp_metadata.parse_experiment_plugin_data(content[hp_metadata.EXPERIMENT_TAG])
    hparams = {}
    for name, value in ssi.hparams.items():
        kind = value.WhichOneof("kind")
        hparams[name] = getattr(value, kind)
    return hparams, {m.name.tag for m in exp.metric_infos}


def all_tags(acc: ea.EventAccumulator) -> set[str]:
    tags = acc.Tags()
    return {t for key in ("scalars", "images", "tensors", "histograms") for t in tags[key]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_json(base: str, route: str, body: dict | None = None, timeout: float = 10):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + route, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def sessions(base: str) -> dict[str, tuple[dict, dict]]:
    """HPARAMS sessions the server knows: {run name: (session group, session)}."""
    request = {"experimentName": "", "allowedStatuses": ALL_STATUSES, "colParams": [],
               "startIndex": 0, "sliceSize": 100}
    groups = http_json(base, "/data/plugin/hparams/session_groups", request, timeout=5)["sessionGroups"]
    return {s["name"]: (g, s) for g in groups for s in g["sessions"]}


def run_name(run_dir: Path, logdir: Path) -> str:
    return run_dir.relative_to(logdir).as_posix()


def width_of(run_dir: Path) -> int:
    return summary(run_dir)["config"]["model"]["width"]


# -- fixtures --------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> tuple[Path, list[Path]]:
    """One multirun, two jobs (width 4 and 8): (working directory, run dirs ordered by width)."""
    cwd = tmp_path_factory.mktemp("tb_sweep")
    run_cli(cwd, "-m", *FAST, "model=convnet", "model.width=4,8")
    return cwd, sorted(run_dirs(cwd), key=width_of)


@pytest.fixture(scope="module")
def server(sweep, tmp_path_factory):
    """A real ``tensorboard`` serving the sweep's outputs on 127.0.0.1; answers once it lists both runs."""
    cwd, runs = sweep
    port = free_port()
    log = tmp_path_factory.mktemp("tb_server") / "tensorboard.log"  # a file: a full pipe would stall it
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tensorboard.main", "--logdir", str(cwd / "outputs"),
                                 "--host", "127.0.0.1", "--port", str(port), "--load_fast=false"],
                                env=cli_env(), stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        names, loaded = {run_name(r, cwd / "outputs") for r in runs}, set()
        while time.monotonic() < deadline and proc.poll() is None and not names <= loaded:
            try:  # the HPARAMS session is the last thing a run writes: once listed, the run is loaded
                loaded = set(sessions(base))
            except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
                pass
            time.sleep(0.5)
        if proc.poll() is not None:
            raise AssertionError(f"tensorboard exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        assert names <= loaded, f"tensorboard did not load both runs within 60 s: {loaded}"
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# -- event files read back -------------------------------------------------------------------------

def test_multirun_gives_two_readable_tensorboard_runs(sweep):
    _, runs = sweep
    assert len(runs) == 2
    assert "model.width-4" in runs[0].name and "model.width-8" in runs[1].name
    for run in runs:
        assert "version_" not in run.as_posix()
        assert list(run.glob("events.out.tfevents.*")), f"no event file directly in {run}"
        assert not (run / "version_0").exists()


@pytest.mark.parametrize("index", [0, 1])
def test_scalars_match_summary_json(sweep, index):
    run = sweep[1][index]
    acc, s = load_events(run), summary(run)
    tags = set(acc.Tags()["scalars"])
    assert set(SCALARS) <= tags, f"missing scalars: {set(SCALARS) - tags}"
    m, cost = s["metrics"], s["cost"]
    assert last_scalar(acc, "test/acc") == pytest.approx(m["test/acc"], abs=1e-6)
    assert last_scalar(acc, "val/acc") == pytest.approx(m["val/acc"], abs=1e-6)
    assert last_scalar(acc, "val/acc_best") == pytest.approx(m["val/acc_best"], abs=1e-6)
    assert last_scalar(acc, "cost/params") == cost["params"]
    assert last_scalar(acc, "cost/macs") == pytest.approx(cost["macs"], rel=1e-6)
    assert last_scalar(acc, "cost/latency_ms") == pytest.approx(cost["latency_ms"], rel=1e-5)
    assert all(0.0 < e.value < 10.0 for e in acc.Scalars("train/loss"))  # cross-entropy on 10 classes


def test_wider_model_logs_more_parameters(sweep):
    narrow, wide = (last_scalar(load_events(r), "cost/params") for r in sweep[1])
    assert wide > narrow > 0
    assert (narrow, wide) == tuple(summary(r)["cost"]["params"] for r in sweep[1])


@pytest.mark.parametrize("index,width", [(0, 4), (1, 8)])
def test_hparams_session_has_config_and_metric_columns(sweep, index, width):
    acc = load_events(sweep[1][index])
    hparams, metric_tags = hparams_of_run(acc)
    assert hparams["model.width"] == width
    assert hparams["model"] == "convnet"
    assert hparams["optimizer.lr"] == pytest.approx(0.001)
    assert hparams["data.batch_size"] == 64
    assert METRIC_COLUMNS <= metric_tags, f"missing metric columns: {METRIC_COLUMNS - metric_tags}"
    assert "hp_metric" not in all_tags(acc) | metric_tags


def test_confusion_matrix_image_is_logged(sweep):
    for run in sweep[1]:
        images = load_events(run).Images("test/confusion_matrix")
        assert images and images[-1].encoded_image_string.startswith(b"\x89PNG")
        assert images[-1].width > 100 and images[-1].height > 100


# -- a real TensorBoard server ---------------------------------------------------------------------

def test_server_lists_runs_and_serves_scalars(sweep, server):
    cwd, runs = sweep
    names = [run_name(r, cwd / "outputs") for r in runs]
    assert set(http_json(server, "/data/runs")) >= set(names)
    for run, name in zip(runs, names):
        query = urllib.parse.urlencode({"run": name, "tag": "test/acc"})
        points = http_json(server, f"/data/plugin/scalars/scalars?{query}")  # [[wall_time, step, value], ...]
        assert points[-1][2] == pytest.approx(summary(run)["metrics"]["test/acc"], abs=1e-6)


def test_server_hparams_experiment_and_session_groups(sweep, server):
    cwd, runs = sweep
    exp = http_json(server, "/data/plugin/hparams/experiment", {"experimentName": ""})
    assert "model.width" in {h["name"] for h in exp["hparamInfos"]}
    assert {"test/acc", "cost/params"} <= {m["name"]["tag"] for m in exp["metricInfos"]}

    listed = sessions(server)
    assert len(listed) == 2
    for run in runs:
        group, session = listed[run_name(run, cwd / "outputs")]
        assert group["hparams"]["model.width"] == width_of(run)
        values = {v["name"]["tag"]: v["value"] for v in session["metricValues"]}
        assert values["test/acc"] == pytest.approx(summary(run)["metrics"]["test/acc"], abs=1e-6)
        assert values["cost/params"] == summary(run)["cost"]["params"]


def test_server_orders_hparams_overridden_keys_first(server):
    """The columns as the HPARAMS tab lays them out: the dashboard shows the first five hyperparameters
    and metrics of this list by default and keeps the rest in its check lists."""
    exp = http_json(server, "/data/plugin/hparams/experiment", {"experimentName": "", "hparamsLimit": 1000})
    infos = exp["hparamInfos"]
    names = [h["name"] for h in infos]
    assert names[:2] == ["model", "model.width"]  # the command line's keys, the swept one among them
    assert [h["name"] for h in infos if h.get("differs")] == ["model", "model.width"]
    constants = names[2:]
    assert constants == sorted(constants) and {"data.batch_size", "optimizer.lr", "seed"} <= set(constants)
    assert "data._target_" not in names and "model._target_" not in names
    metrics = [m["name"]["tag"] for m in exp["metricInfos"]]
    assert metrics[:5] == ["val/acc_best", "test/acc", "cost/params", "cost/macs", "cost/latency_ms"]


def test_server_trial_ids_start_with_the_swept_values(sweep, server):
    cwd, runs = sweep
    stamp = runs[0].parent.name
    listed = sessions(server)
    for num, (run, width) in enumerate(zip(runs, (4, 8))):
        group, _ = listed[run_name(run, cwd / "outputs")]
        assert group["name"] == f"{num} width={width} · multiruns/{stamp}"  # the column shows ~15 characters


# -- cross-validation ------------------------------------------------------------------------------

def test_cross_validation_writes_fold_runs_and_mean_hparams(tmp_path):
    run_cli(tmp_path, *FAST, "cv.folds=2", "model=seed003")
    (run,) = run_dirs(tmp_path)
    s = summary(run)
    cv = s["cv"]
    assert set(cv) == {"folds", "mean", "std"} and [f["fold"] for f in cv["folds"]] == [0, 1]
    for metric in ("val/acc_best", "test/acc"):
        values = [f[metric] for f in cv["folds"]]
        assert cv["mean"][metric] == pytest.approx(statistics.fmean(values), abs=1e-9)
        assert cv["std"][metric] == pytest.approx(statistics.pstdev(values), abs=1e-9)

    for k in (0, 1):
        fold = load_events(run / f"fold_{k}")
        assert fold.Scalars("val/acc_best")[-1].value == pytest.approx(cv["folds"][k]["val/acc_best"], abs=1e-6)
        hparams, _ = hparams_of_run(fold)
        assert hparams["cv.fold"] == k
        content = fold.PluginTagToContent("hparams")
        exp = hp_metadata.parse_experiment_plugin_data(content[hp_metadata.EXPERIMENT_TAG])
        assert [h.name for h in exp.hparam_infos if h.differs] == ["cv.fold", "cv.folds", "model"]
        start = hp_metadata.parse_session_start_info_plugin_data(content[hp_metadata.SESSION_START_INFO_TAG])
        assert start.group_name == f"folds=2,model=seed003/fold_{k} · runs/{run.name[:19]}"

    top = load_events(run)
    hparams, metric_tags = hparams_of_run(top)
    assert hparams["cv.fold"] == "mean" and hparams["cv.folds"] == 2
    assert "cv/val_acc_mean" in metric_tags
    assert last_scalar(top, "cv/val_acc_mean") == pytest.approx(cv["mean"]["val/acc_best"], abs=1e-6)
    assert s["metrics"]["cv/val_acc_mean"] == pytest.approx(cv["mean"]["val/acc_best"], abs=1e-9)
