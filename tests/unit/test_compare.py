"""archfuse-compare: a table of real runs' summary.json files (one multirun over width and seed, one run
over seeds and folds, made once), its filters, sorting, aggregation, formats, plot and error texts; and
the pure pieces on hand-made runs."""

import csv
import io
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from archfuse.comparison.plot import pareto_front
from archfuse.comparison.runs import Run, short_name
from archfuse.comparison.table import build_table, differing_keys, render
from conftest import FAST, cli_env, run_cli, run_dirs, summary


def compare(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "archfuse.compare", *args], cwd=cwd, env=cli_env(),
                          capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> Path:
    """outputs/ with a multirun (width 4, 8 x seed 1, 2: four runs) and a run over 2 seeds x 2 folds."""
    cwd = tmp_path_factory.mktemp("compare")
    run_cli(cwd, "-m", *FAST, "model=convnet", "model.width=4,8", "seed=1,2")
    run_cli(cwd, *FAST, "model=convnet", "model.width=4", "seeds=2", "cv.folds=2")
    return cwd / "outputs"


@pytest.fixture(scope="module")
def multirun(outputs) -> Path:
    (sweep,) = (outputs / "multiruns").iterdir()
    return sweep


def by_config(outputs: Path) -> dict[tuple, dict]:
    """summary.json of each multirun job, by (width, seed)."""
    return {(s["config"]["model"]["width"], s["config"]["seed"]): s
            for s in map(summary, run_dirs(outputs.parent)) if s["config"]["cv"]["folds"] == 0}


# -- the real CLI on real runs ---------------------------------------------------------------------

def test_table_has_only_the_differing_keys_and_the_runs_figures(multirun, outputs):
    proc = compare(str(multirun), "--format", "csv", cwd=outputs.parent)
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert len(rows) == 4
    keys = [c for c in rows[0] if c not in ("run", "n", "status", "path") and "/" not in c]
    assert sorted(keys) == ["model.width", "seed"]  # model, data, optimizer ... are the same in all four
    assert {"val/acc_best", "test/acc", "cost/params", "cost/macs", "cost/latency_ms"} <= set(rows[0])
    truth = by_config(outputs)
    for row in rows:
        s = truth[(int(row["model.width"]), int(row["seed"]))]
        assert float(row["test/acc"]) == pytest.approx(s["metrics"]["test/acc"])
        assert float(row["val/acc_best"]) == pytest.approx(s["metrics"]["val/acc_best"])
        assert float(row["cost/params"]) == s["cost"]["params"]
        assert float(row["cost/latency_ms"]) == pytest.approx(s["cost"]["latency_ms"])
        assert row["run"] == f"{Path(row['path']).name.split('_')[0]}" and row["status"] == "ok"


def test_outputs_dir_lists_every_run_with_seed_and_fold_means(outputs):
    proc = compare("outputs", "--format", "csv", cwd=outputs.parent)
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert len(rows) == 5
    (repeated,) = [r for r in rows if r["n"] == "2"]
    s = summary(Path(repeated["path"]))
    assert repeated["run"].startswith("runs/") and repeated["seeds"] == "2" and repeated["cv.folds"] == "2"
    assert float(repeated["cv/val_acc_mean"]) == pytest.approx(s["metrics"]["cv/val_acc_mean"])
    assert float(repeated["test/acc_std"]) == pytest.approx(s["metrics"]["test/acc_std"])


def test_sort_puts_the_best_first_and_where_filters(outputs):
    proc = compare("outputs", "--sort", "test/acc", "--format", "csv", cwd=outputs.parent)
    values = [float(r["test/acc"]) for r in csv.DictReader(io.StringIO(proc.stdout))]
    assert values == sorted(values, reverse=True)
    cheap = compare("outputs", "--sort", "cost/params", "--format", "csv", cwd=outputs.parent)
    params = [float(r["cost/params"]) for r in csv.DictReader(io.StringIO(cheap.stdout))]
    assert params == sorted(params)  # a cost: lowest first

    proc = compare("outputs", "--where", "model.width=8", "--where", "seed=1,2", "--format", "csv",
                   cwd=outputs.parent)
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert sorted(int(r["seed"]) for r in rows) == [1, 2] and "model.width" not in rows[0]  # no longer differs


def test_aggregate_seed_gives_mean_std_and_n(multirun, outputs):
    proc = compare(str(multirun), "--aggregate", "seed", "--format", "csv", cwd=outputs.parent)
    rows = {int(r["model.width"]): r for r in csv.DictReader(io.StringIO(proc.stdout))}
    assert sorted(rows) == [4, 8] and "seed" not in rows[4]
    truth = by_config(outputs)
    for width, row in rows.items():
        accs = [truth[(width, seed)]["metrics"]["test/acc"] for seed in (1, 2)]
        assert row["n"] == "2" and row["run"] == "2 runs"
        assert float(row["test/acc"]) == pytest.approx(statistics.fmean(accs))
        assert float(row["test/acc_std"]) == pytest.approx(statistics.stdev(accs))
    text = compare(str(multirun), "--aggregate", "seed", cwd=outputs.parent).stdout
    assert "aggregated over seed" in text and " ± " in text


def test_markdown_and_table_formats(multirun, outputs):
    md = compare(str(multirun), "--format", "markdown", cwd=outputs.parent).stdout.splitlines()
    assert md[0].startswith("| run | ") and md[1].startswith("|---|") and len(md) == 6
    assert "model.width" in md[0] and "test/acc" in md[0]
    text = compare(str(multirun), cwd=outputs.parent).stdout
    assert "archfuse-compare: 4 rows" in text and "cost/params" in text


def test_plot_writes_a_png_with_the_front(multirun, outputs, tmp_path):
    png = tmp_path / "front.png"
    proc = compare(str(multirun), "--aggregate", "seed", "--plot", str(png), "--cost", "cost/macs",
                   cwd=outputs.parent)
    assert proc.returncode == 0, proc.stderr
    assert "on the Pareto front of val/acc_best against cost/macs" in proc.stderr
    from PIL import Image

    with Image.open(png) as image:
        assert image.format == "PNG" and image.size == (840, 540)
        image.verify()


def test_compare_does_not_import_torch(multirun):
    code = ("import sys; from archfuse.compare import main; main([sys.argv[1], '--format', 'csv']); "
            "print(sorted(m for m in ('torch', 'lightning', 'torchvision', 'matplotlib', 'hydra') "
            "if m in sys.modules), file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code, str(multirun)], env=cli_env(), capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.strip() == "[]"


@pytest.mark.parametrize("args,message", [
    (["missing_dir"], "archfuse-compare: error: missing_dir: no such file or directory"),
    (["empty"], "archfuse-compare: error: empty: holds no runs (no summary.json below it)"),
    (["outputs", "--where", "model.colour=red"], "error: --where: no run has the key 'model.colour'"),
    (["outputs", "--where", "model.width=3"], "error: --where: no run has model.width=3; model.width is 4, 8"),
    (["outputs", "--where", "width"], "error: --where: 'width' is not KEY=VALUE"),
    (["outputs", "--sort", "test/accuracy"], "error: --sort: no run has the key 'test/accuracy'"),
])
def test_errors_name_the_path_or_option(outputs, args, message):
    (outputs.parent / "empty").mkdir(exist_ok=True)
    proc = compare(*args, cwd=outputs.parent)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


# -- pure pieces -----------------------------------------------------------------------------------

def make_run(name: str, acc: float, params: float, **config) -> Run:
    return Run(path=Path("/x") / name, name=name, config={"model": "convnet", "data.batch_size": 64, **config},
               metrics={"val/acc_best": acc, "test/acc": acc, "cost/params": params})


def test_differing_keys_keep_config_order_and_count_missing_keys():
    runs = [make_run("a", 0.9, 10, **{"model.width": 8, "seed": 1}),
            make_run("b", 0.8, 20, **{"model.width": 16, "seed": 1, "model.dropout": 0.1})]
    assert differing_keys(runs) == ["model.width", "model.dropout"]
    assert differing_keys(runs[:1]) == []


def test_where_matches_numbers_booleans_and_none():
    runs = [make_run("a", 0.9, 10, **{"model.bn": True, "lr": 0.001, "w": None}),
            make_run("b", 0.8, 20, **{"model.bn": False, "lr": 0.01, "w": 3})]
    assert [r.label for r in build_table(runs, where=["model.bn=true"]).rows] == ["a"]
    assert [r.label for r in build_table(runs, where=["lr=1e-2"]).rows] == ["b"]
    assert [r.label for r in build_table(runs, where=["w=None"]).rows] == ["a"]


def test_pareto_front_is_the_non_dominated_points_cheapest_first():
    points = [(10, 0.80), (20, 0.90), (15, 0.70), (30, 0.90), (5, 0.60), (20, 0.85)]
    assert pareto_front(points) == [4, 0, 1]


def test_short_names_drop_the_overrides_the_columns_show():
    assert short_name("multiruns/2026-12-02_07-01-25/0_model.width-8") == "multiruns/2026-12-02_07-01-25/0"
    assert short_name("runs/2026-12-02_07-01-25_model-convnet") == "runs/2026-12-02_07-01-25"
    assert short_name("sweeps/study/12_model.width-8") == "sweeps/study/12"


def test_markdown_of_hand_made_runs():
    runs = [make_run("a", 0.9, 1000, **{"model.width": 8}), make_run("b", 0.85, 2000, **{"model.width": 16})]
    md = render(build_table(runs, sort="cost/params", reverse=True), "markdown")
    assert md == ("| run | model.width | val/acc_best | test/acc | cost/params |\n"
                  "|---|---|---:|---:|---:|\n"
                  "| b | 16 | 0.8500 | 0.8500 | 2,000 |\n"
                  "| a | 8 | 0.9000 | 0.9000 | 1,000 |\n")


def test_plot_axis_numbers_are_compact():
    from archfuse.comparison.plot import _compact

    assert [_compact(x) for x in (400_000, 1_200_000, 2e9, 850, 0.25)] == ["400k", "1.2M", "2G", "850", "0.25"]


def test_pruned_runs_show_their_status_and_sort_last_where_a_metric_is_missing():
    done = make_run("done", 0.9, 1000, **{"model.width": 8})
    pruned = Run(path=Path("/x/pruned"), name="pruned", config={**done.config, "model.width": 16},
                 metrics={"val/acc_best": 0.5}, status="pruned")
    table = build_table([pruned, done], sort="test/acc")
    assert [r.label for r in table.rows] == ["done", "pruned"] and table.show_status
    lines = render(table, "markdown").splitlines()
    assert lines[0].endswith("| status |") and lines[3].endswith("| pruned |")
    assert "|  |" in lines[3]  # no test/acc for the pruned run


def test_a_users_own_class_under_a_chosen_name_shows_as_a_differing_key():
    own = make_run("own", 0.9, 10, **{"model._target_": "mynets.Net", "model.width": 8})
    runs = [make_run("a", 0.8, 10, **{"model._target_": "archfuse.models.ConvNet", "model.width": 8}),
            make_run("b", 0.85, 10, **{"model._target_": "archfuse.models.ConvNet", "model.width": 16}), own]
    assert differing_keys(runs) == ["model._target_", "model.width"]
    # Where the chosen name tells the class, the column is left out.
    named = [make_run("a", 0.8, 10, model="convnet", **{"model._target_": "archfuse.models.ConvNet"}),
             make_run("b", 0.8, 10, model="mlp", **{"model._target_": "archfuse.models.MLP"})]
    assert differing_keys(named) == ["model"]


def test_plot_of_many_mixed_runs_keeps_every_label_inside_without_warnings(tmp_path):
    import warnings

    import matplotlib.pyplot as plt

    from archfuse.comparison import plot as plot_module

    runs = [make_run(f"r{i}", 0.80 + 0.01 * (i % 7), 10 ** (2 + i % 5) * (1 + i),
                     **{"model": ["convnet", "mlp", "seed000", "seed003"][i % 4], "model.width": 8 * (i + 1),
                        "recipe": ["none", "prune", "distill"][i % 3], "optimizer.lr": 10 ** -(i % 4)})
            for i in range(16)]
    table = build_table(runs)
    kept = []
    real_close = plt.close
    plt.close = lambda fig: kept.append(fig)  # keep the figure to measure where its labels were drawn
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            plot_module.plot(table, tmp_path / "front.png")
    finally:
        plt.close = real_close
    fig = kept[0]
    renderer = fig.canvas.get_renderer()
    box = fig.bbox
    labels = [t for t in fig.axes[0].texts]
    assert len(labels) == 16 and all(len(t.get_text()) <= plot_module.LABEL_LENGTH for t in labels)
    for text in labels:
        extent = text.get_window_extent(renderer)
        assert box.x0 <= extent.x0 and extent.x1 <= box.x1 and box.y0 <= extent.y0 and extent.y1 <= box.y1, \
            text.get_text()
    assert (tmp_path / "front.png").stat().st_size > 10_000
    real_close(fig)
