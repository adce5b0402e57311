"""The sections of summary.json, in the order a summary lists them, and the JSON Schema they make
(docs/summary.schema.json; ``python -m archfuse.summary`` prints it).

Sections that plug-ins fill (a recipe step's report, an ensemble strategy's) name the keys every one
has and leave room for a plug-in's own."""

import json
from typing import Any

from archfuse.summary.metrics import COST, METRICS, REPEATED, STD

VERSION = 1  # the layout's version: raised when a section changes its meaning or shape
DRAFT = "https://json-schema.org/draft/2020-12/schema"


def _number(description: str = "") -> dict[str, Any]:
    return {"type": "number", **({"description": description} if description else {})}


def _integer(description: str = "") -> dict[str, Any]:
    return {"type": "integer", **({"description": description} if description else {})}


def _string(description: str = "") -> dict[str, Any]:
    return {"type": "string", **({"description": description} if description else {})}


def _object(description: str, properties: dict[str, Any] | None = None, required: tuple[str, ...] = (),
            extra: Any = True) -> dict[str, Any]:
    """An object with these ``properties``; ``extra``: the schema of any other key (True: anything)."""
    out: dict[str, Any] = {"type": "object", "description": description}
    if properties:
        out["properties"] = properties
    if required:
        out["required"] = list(required)
    if extra is not True:
        out["additionalProperties"] = extra
    return out


def _numbers(description: str, properties: dict[str, Any] | None = None) -> dict[str, Any]:
    return _object(description, properties, extra=_number())


def _array(description: str, items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "description": description, "items": items}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "type": [schema["type"], "null"]}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/$defs/{name}"}


_METRICS = {m.name: _number(m.meaning) for m in METRICS if not m.name.startswith(COST)}
_REPEATED = {name: _METRICS[name] for name in REPEATED}
_COST = {m.name.removeprefix(COST): _integer(m.meaning) if m.name != "cost/latency_ms" else _number(m.meaning)
         for m in METRICS if m.name.startswith(COST)}

# Reports that occur more than once (a fit's and, over repeats, each fit's under "runs").
DEFS = {
    "figures": _object("a network's figures at one point: val/acc, val/loss, test/acc and its cost (params, macs, "
                       "size_bytes, latency_ms, latency_batch_size)",
                       {"val/acc": _number(), "val/loss": _number(), "test/acc": _number(), **_COST}),
    "recipe_step": _object(
        "one after-fit step of the recipe chain: its name, what the step says about itself (its own keys), "
        "and the network's figures before and after it. Over seeds or folds each number is the mean over the "
        "fits, its std beside it (<key>_std, before_std, after_std), every fit's report under runs",
        {"name": _string("the recipe's name (prune, cut, quantize, ...)"),
         "summary": _string("one line the printed summary shows"),
         "before": _ref("figures"), "after": _ref("figures"),
         "fits": _integer("over repeats: how many fits the figures are the mean of"),
         "before_std": _numbers("over repeats: the std of each before figure"),
         "after_std": _numbers("over repeats: the std of each after figure"),
         "runs": _array("over repeats: each fit's own report of this step", _ref("recipe_step"))},
        required=("name",)),
    "ensemble_split": _object(
        "the ensemble on one split", {
            "member_acc": _array("each member's accuracy", _number()),
            "acc": _number("the ensemble's accuracy"),
            "gain_over_best": _number("acc minus the best member's"),
            "gain_over_mean": _number("acc minus the members' mean")}),
    "ensemble": _object(
        "the ensemble strategy's report: members and ensemble on val and test, the members' disagreement, what "
        "the combiner fitted; a strategy adds its own keys. Over seeds or folds: every fit's report under runs "
        "and the mean and std over the fits of the ensemble's accuracy and gains (<split>_<name>_mean, _std)",
        {"strategy": _string("the strategy's class name"),
         "members": _integer("how many members"),
         "member_checkpoints": _array("loaded members' checkpoints (ensemble.checkpoints, ensemble.from_sweep)",
                                      _string()),
         "val": _ref("ensemble_split"), "test": _ref("ensemble_split"),
         "disagreement": _array("pairwise share of validation samples two members label differently",
                                _array("", _number())),
         "mean_disagreement": _number("disagreement averaged over the pairs"),
         "metrics": _numbers("the ensemble/ metrics the run reports",
                             {k: v for k, v in _METRICS.items() if k.startswith("ensemble/")}),
         "fitted": _object("what the strategy's combiner fitted, as it reports it"),
         "tensors": _object("the combiner's tensors, as lists"),
         "runs": _array("over repeats: each fit's report", _ref("ensemble"))}),
}

_MEAN_STD = {"mean": _numbers("the mean over the fits of each metric", _REPEATED),
             "std": _numbers("the standard deviation over the fits of each metric", _REPEATED)}

# Every top-level key of summary.json, in the order a summary lists them.
SECTIONS: dict[str, dict[str, Any]] = {
    "version": {"const": VERSION, "description": "the layout's version (a summary without it has layout 1)"},
    "config": _object("the run's config as composed and resolved (what archfuse-train --cfg job shows)"),
    "choices": _object("the option chosen in each config group (model: convnet, ...)", extra=_string()),
    "metrics": _numbers(
        "the run's final metrics (over seeds or folds: their means; over seeds the std of each repeated metric "
        f"as <name>{STD}). A pruned run: the last figures it logged and the epoch it stopped at",
        {**_METRICS, **{m.name + STD: _number(f"over seeds: the sample std of {m.name}") for m in METRICS
                        if m.repeated}, "epoch": _integer("a pruned run: the epoch it stopped at")}),
    "training": _object("how the run trained", {
        "precision": _string("the Trainer's precision (32-true, bf16-mixed, ...)"),
        "cpu_features": _array("the host CPU's instruction-set features among AMX-BF16, AMX-INT8, AVX512-BF16, "
                               "AVX512-VNNI, AVX-512, AVX-VNNI, AVX2 (strongest first; empty: none of them): "
                               "whether bf16 and int8 are native there. Absent in summaries written before it "
                               "was recorded", _string()),
        "epochs": _integer("epochs trained (of one fit)"),
        "seconds": _number("wall time of the training, all fits together"),
        "fits": _integer("over seeds or folds: how many fits")}, required=("precision", "epochs", "seconds")),
    "data": _object("the data spec: what a new image must look like to the network (also in every checkpoint, "
                    "under archfuse.data)", {
        "input_shape": _array("[C, H, W], what the network takes", {"type": "integer"}),
        "classes": _array("the class names in label order", _string()),
        "mean": _array("per channel, of the training pool, on the [0, 1] pixel scale: the network sees "
                       "(x - mean) / std", _number()),
        "std": _array("per channel, of the training pool, on the [0, 1] pixel scale", _number()),
        "channels": _integer("1 (grayscale) or 3 (RGB): how a new image is converted"),
        "image_size": _array("[H, W]: every image is resized to this (bilinear, antialiased)", {"type": "integer"})},
        required=("input_shape", "classes", "mean", "std", "channels", "image_size")),
    "cost": _object("what the final model costs, measured on CPU (metrics cost/NAME)", _COST,
                    required=tuple(_COST), extra=_number()),
    "recipe": _array("one report per after-fit step of the recipe chain, in order (empty: no step)",
                     _ref("recipe_step")),
    "ensemble": _ref("ensemble"),
    "cv": _object("cross-validation (cv.folds): each fold's figures, and their mean and population std", {
        "folds": _array("each fit, in order (with seeds: each seed's folds)",
                        _numbers("one fold's metrics", {"fold": _integer("the fold's index"),
                                                        "seed": _integer("with seeds: the fit's seed")})),
        **_MEAN_STD}, required=("folds", "mean", "std")),
    "seeds": _object("repeats over seeds (seeds=N): each seed's figures (under cv.folds its mean over the "
                     "folds), and their mean and sample std", {
        "runs": _array("each seed, in order", _object(
            "one seed's metrics and its last fit's final checkpoint",
            {"seed": _integer("the fit's seed"), "checkpoint": _nullable(_string("its final model"))},
            extra=_number())),
        **_MEAN_STD}, required=("runs", "mean", "std")),
    "checkpoint": _nullable(_string("the final model: checkpoints/final.ckpt after a recipe step or an "
                                    "ensemble's combiner, else the best epoch's")),
    "best_checkpoint": _nullable(_string("the best epoch's checkpoint (by the checkpoint callback's monitor)")),
    "confusion_matrix": _array("test confusion matrix: row = true class, column = predicted",
                               _array("", {"type": "integer"})),
    "versions": _object("versions of Python and of the packages the run used", extra=_string(),
                        required=("python", "archfuse", "torch")),
    "status": {"enum": ["ok", "pruned", "interrupted"], "description": "ok: the run finished; pruned: a sweep's "
               "pruner stopped it early (its summary has config, choices, metrics and versions); interrupted: "
               "SIGINT or SIGTERM stopped it (its summary says what it kept under interruption)"},
    "interruption": _object("an interrupted run: the signal, what its resume checkpoint holds, how to continue", {
        "signal": _string("SIGINT or SIGTERM"),
        "epochs_done": _nullable(_integer("completed epochs in last_checkpoint")),
        "last_checkpoint": _nullable(_string("checkpoints/last.ckpt: the whole training state (null: no epoch "
                                             "had completed)")),
        "resume": _nullable(_string("the command that continues the run (null: nothing to continue from, or "
                                    "repeated fits, which start again)"))},
        required=("signal", "epochs_done", "last_checkpoint", "resume")),
    "objective": _object("what a sweeper optimises: one entry per objective", {
        "names": _array("metric names", _string()),
        "directions": _array("max or min", {"enum": ["max", "min"]}),
        "values": _array("the run's values", _number())}, required=("names", "directions", "values")),
}

PRUNED_SECTIONS = ("version", "config", "choices", "status", "metrics", "versions")
INTERRUPTED_SECTIONS = (*PRUNED_SECTIONS, "interruption")
OK_REQUIRED = ("version", "config", "choices", "metrics", "training", "cost", "recipe", "versions", "status",
               "objective")


def schema() -> dict[str, Any]:
    """The JSON Schema of summary.json."""
    return {
        "$schema": DRAFT,
        "title": "archfuse summary.json",
        "description": "What a finished run (or a pruned sweep trial, or an interrupted run) reports: written by archfuse-train into its run "
                       "directory, read by archfuse-compare, the sweeper and ensemble.from_sweep.",
        "type": "object",
        "properties": SECTIONS,
        "required": ["version", "config", "choices", "status", "metrics", "versions"],
        "additionalProperties": False,
        "allOf": [{"if": {"properties": {"status": {"const": "ok"}}},
                   "then": {"required": list(OK_REQUIRED)}},
                  {"if": {"properties": {"status": {"const": "pruned"}}},
                   "then": {"propertyNames": {"enum": list(PRUNED_SECTIONS)}}},
                  {"if": {"properties": {"status": {"const": "interrupted"}}},
                   "then": {"required": ["interruption"],
                            "propertyNames": {"enum": list(INTERRUPTED_SECTIONS)}}}],
        "$defs": DEFS,
    }


def schema_text() -> str:
    """docs/summary.schema.json as ``python -m archfuse.summary`` writes it."""
    return json.dumps(schema(), indent=2) + "\n"
