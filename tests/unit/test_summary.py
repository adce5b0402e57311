"""The summary module: its JSON Schema is the committed docs/summary.schema.json, the metric lists
derived from its one list keep the order TensorBoard, the repeats and the objective rely on, and
summary.json is read with a clear error when it is missing or damaged."""

import json
from pathlib import Path

import jsonschema
import pytest

from archfuse.errors import ConfigError
from archfuse.host import cpu_features
from archfuse.summary import (FAMILIES, HPARAMS_COLUMNS, METRICS, REPEATED, SECTIONS, SELECTABLE, VERSION, fit_sections,
                              metric_value, pruned_summary, read_summary, reported_metrics, run_summary, schema,
                              schema_text, std_dev, training_record, write_summary)

REPO = Path(__file__).resolve().parents[2]


def validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema())


def test_committed_schema_is_the_generated_one():
    committed = (REPO / "docs" / "summary.schema.json").read_text()
    assert committed == schema_text(), "regenerate it: python -m archfuse.summary > docs/summary.schema.json"


def test_schema_is_a_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(schema())
    assert list(SECTIONS)[0] == "version" and schema()["properties"]["version"] == SECTIONS["version"]


def test_hparams_columns_keep_the_order_tensorboard_shows():
    assert HPARAMS_COLUMNS == ("val/acc_best", "test/acc", "cost/params", "cost/macs", "cost/latency_ms",
                               "cv/val_acc_mean", "val/acc_best_std", "test/acc_std", "test/loss", "cost/size_bytes",
                               "ensemble/val_acc", "ensemble/val_gain_over_best", "ensemble/val_gain_over_mean",
                               "ensemble/mean_disagreement")


def test_repeated_metrics_and_selectable_families():
    assert REPEATED == ("val/acc_best", "val/loss", "test/acc", "test/loss", "ensemble/val_acc",
                        "ensemble/val_gain_over_best", "ensemble/val_gain_over_mean")
    assert SELECTABLE == ("val/", "cv/", "cost/", "train/", "ensemble/", "recipe/")
    assert len({m.name for m in METRICS}) == len(METRICS)
    for metric in METRICS:
        assert metric.name.startswith(tuple(FAMILIES)), metric.name


def test_metric_value_reads_metrics_and_cost_by_name():
    summary = {"metrics": {"val/acc_best": 0.5}, "cost": {"params": 120, "macs": 9}}
    assert metric_value(summary, "val/acc_best") == 0.5
    assert metric_value(summary, "cost/params") == 120
    assert metric_value(summary, "cost/latency_ms") is None and metric_value(summary, "val/loss") is None
    assert metric_value({}, "cost/params") is None
    assert reported_metrics(summary) == ["val/acc_best", "cost/params", "cost/macs"]


def test_std_dev_is_the_sample_or_the_population_std():
    assert std_dev([1.0, 3.0]) == pytest.approx(2 ** 0.5)
    assert std_dev([1.0, 3.0], sample=False) == pytest.approx(1.0)
    assert std_dev([2.0]) == 0.0


def test_a_pruned_summary_validates_and_an_unknown_section_does_not(tmp_path):
    pruned = pruned_summary({"seed": 42}, {"model": "convnet"}, {"val/acc": 0.25, "train/loss": 2.0, "epoch": 1})
    assert list(pruned) == ["version", "config", "choices", "status", "metrics", "versions"]
    validator().validate(pruned)
    write_summary(tmp_path, pruned)
    assert read_summary(tmp_path) == pruned == read_summary(tmp_path / "summary.json")
    errors = [e.message for e in validator().iter_errors({**pruned, "status": "ok"})]
    assert "'objective' is a required property" in errors
    errors = [e.message for e in validator().iter_errors({**pruned, "extra": 1})]
    assert any("('extra' was unexpected)" in e for e in errors)
    with pytest.raises(KeyError, match="summary.json has no section \\['extra'\\]"):
        run_summary({}, {}, {"metrics": {}, "extra": 1}, {"names": [], "directions": [], "values": []})


def test_fit_sections_keep_summary_order_and_the_checkpoints_even_when_none():
    sections = fit_sections(metrics={"val/acc_best": 0.5}, training={}, recipe=[], checkpoint=None,
                            best_checkpoint=None, confusion_matrix=[[1]])
    assert list(sections) == ["metrics", "training", "recipe", "checkpoint", "best_checkpoint", "confusion_matrix"]


def test_the_training_record_names_the_cpu_features_beside_the_precision():
    record = training_record("bf16-mixed", 3, 12.345, fits=2)
    assert record == {"precision": "bf16-mixed", "cpu_features": list(cpu_features()), "epochs": 3, "seconds": 12.35,
                      "fits": 2}
    assert list(record)[:2] == ["precision", "cpu_features"]
    sections = fit_sections(metrics={}, training=record, recipe=[], checkpoint=None, best_checkpoint=None)
    summary = run_summary({}, {}, {**sections, "cost": {"params": 1, "macs": 1, "size_bytes": 4, "latency_ms": 0.1,
                                                        "latency_batch_size": 1}},
                          {"names": [], "directions": [], "values": []})
    validator().validate(summary)
    older = {**summary, "training": {k: v for k, v in record.items() if k != "cpu_features"}}
    validator().validate(older)  # written before the features were recorded: still this layout
    errors = [e.message for e in validator().iter_errors({**summary, "training": {**record, "cpu_features": "AMX"}})]
    assert errors == ["'AMX' is not of type 'array'"]


def test_read_summary_names_the_file_when_it_is_missing_or_damaged(tmp_path):
    file = tmp_path / "summary.json"
    with pytest.raises(ConfigError, match=f"{file}: cannot be read"):
        read_summary(tmp_path)
    file.write_text('{"config": ')
    with pytest.raises(ConfigError, match=f"{file}: is damaged \\(not JSON"):
        read_summary(tmp_path)
    file.write_text("[1, 2]")
    with pytest.raises(ConfigError, match="is damaged \\(a JSON list, not an object\\)"):
        read_summary(file)
    file.write_text(json.dumps({"version": VERSION + 1, "config": {}}))
    with pytest.raises(ConfigError, match=f"has layout version {VERSION + 1}; this archfuse reads version {VERSION}"):
        read_summary(file)
    file.write_text(json.dumps({"config": {}, "status": "ok"}))  # written before the version field
    assert read_summary(file) == {"config": {}, "status": "ok"}
