"""The one build path: data module, network (members through the ensemble strategy, then the recipe
chain), criterion and LightningModule, each built once from the composed config.

A checkpoint carries a *record* of how its network's structure came to be (the members' own records,
the recipes' states); building with that record rebuilds the exact structure the weights belong to,
without reading any other file.
"""

from dataclasses import dataclass
from typing import Any

import torch
from lightning.pytorch import seed_everything
from torch import nn

from archfuse.checkpoint import RECORD_KEY, read_checkpoint
from archfuse.checks import check_count
from archfuse.context import RunContext
from archfuse.data.datamodule import TensorDataModule
from archfuse.ensembles.base import Ensemble, MemberSpec
from archfuse.errors import ConfigError
from archfuse.instantiate import build
from archfuse.models.build import build_model
from archfuse.module import ClassifierModule
from archfuse.recipes.base import Recipe


@dataclass
class Network:
    net: nn.Module
    recipe: Recipe
    ensemble: Ensemble
    member_records: list[dict[str, Any] | None]


@dataclass
class Parts:
    datamodule: TensorDataModule
    module: ClassifierModule
    resume: dict[str, Any] | None = None  # the checkpoint of ckpt_path, when the run starts from one


def build_datamodule(config: dict[str, Any]) -> TensorDataModule:
    dm = build(config["data"], "data")
    if not isinstance(dm, TensorDataModule):
        raise ConfigError("data._target_", f"{config['data']['_target_']} is not an archfuse TensorDataModule")
    return dm


def _built(node: dict[str, Any], key: str, kind: type) -> Any:
    obj = build(node, key)
    if not isinstance(obj, kind):
        raise ConfigError(f"{key}._target_", f"{node['_target_']} is not an {kind.__module__}.{kind.__name__}")
    return obj


# The data options that fix the validation and test splits: a member loaded from a checkpoint must have
# been trained with the same ones, else its training images may sit in this run's validation split.
# (Where the files lie, data.root, may differ between machines.)
SPLIT_KEYS = ("_target_", "seed", "val_fraction", "test_fraction", "image_size")


def _check_same_data(spec: MemberSpec, theirs: dict[str, Any], ours: dict[str, Any]) -> None:
    differ = [k for k in SPLIT_KEYS if theirs.get(k) != ours.get(k)]
    if differ:
        show = lambda d: ", ".join(f"{k}={d.get(k)}" for k in differ)  # noqa: E731
        raise ConfigError(spec.key, f"{spec.checkpoint} was trained on other data ({show(theirs)}) than this run "
                          f"({show(ours)}); use the data config it was trained with, or a checkpoint of this data")


def member_from_checkpoint(spec: MemberSpec, input_shape: tuple[int, ...], num_classes: int,
                           data: dict[str, Any] | None = None) -> tuple[nn.Module, dict]:
    """A trained network from any archfuse checkpoint (a recipe's final model, an ensemble), and its record;
    with ``data`` (the run's data config), the checkpoint must come from the same data and split."""
    ckpt = read_checkpoint(spec.checkpoint, spec.key)
    hp = ckpt["hyper_parameters"]
    if data is not None:
        _check_same_data(spec, hp["config"].get("data") or {}, data)
    shape, classes = tuple(hp.get("input_shape", ())), hp.get("num_classes")
    if shape != tuple(input_shape) or classes != num_classes:
        raise ConfigError(spec.key, f"{spec.checkpoint} was trained on {'x'.join(map(str, shape))} inputs with "
                          f"{classes} classes, but this run's data gives {'x'.join(map(str, input_shape))} with "
                          f"{num_classes}; use a checkpoint trained on the same data")
    record = {"config": hp["config"], "input_shape": list(shape), "num_classes": classes,
              "record": ckpt.get(RECORD_KEY)}
    net = network_from_record(record)
    weights = {k.removeprefix("net."): v for k, v in ckpt["state_dict"].items() if k.startswith("net.")}
    try:
        net.load_state_dict(weights)
    except RuntimeError as err:
        raise ConfigError(spec.key, f"{spec.checkpoint}: weights do not fit the network its config builds: "
                          f"{str(err).splitlines()[0]}") from None
    return net, record


def network_from_record(record: dict[str, Any]) -> nn.Module:
    """The network of a saved member, rebuilt from its own run config and structure record."""
    with torch.random.fork_rng():
        return build_network(record["config"], tuple(record["input_shape"]), record["num_classes"],
                             record.get("record")).net


def build_network(config: dict[str, Any], input_shape: tuple[int, ...], num_classes: int,
                  record: dict[str, Any] | None = None) -> Network:
    """Members (through the ensemble strategy), combined, then transformed by the recipe chain; with a
    checkpoint's ``record``, the recipes' after-fit changes are replayed so its weights fit."""
    ensemble = _built(config["ensemble"], "ensemble", Ensemble)
    recipe = _built(config["recipe"], "recipe", Recipe)
    c, h, w = input_shape
    specs = ensemble.member_specs(config["model"], config.get("seed"))
    saved = (record or {}).get("members") or [None] * len(specs)
    members, member_records = [], []
    for spec, saved_member in zip(specs, saved, strict=True):
        if saved_member is not None:
            net, member_record = network_from_record(saved_member), saved_member
        elif spec.checkpoint:
            net, member_record = member_from_checkpoint(spec, input_shape, num_classes, config.get("data"))
        elif spec.seed is None:
            net, member_record = build_model(spec.model, c, num_classes, (h, w), key=spec.key), None
        else:
            with torch.random.fork_rng():
                torch.manual_seed(spec.seed)
                net, member_record = build_model(spec.model, c, num_classes, (h, w), key=spec.key), None
        if spec.frozen:
            net.requires_grad_(False)
        members.append(net)
        member_records.append(member_record)
    net = recipe.transform(ensemble.build(members, num_classes))
    if record and record.get("recipes") is not None:
        net = recipe.restore(net, record["recipes"])
    return Network(net, recipe, ensemble, member_records)


def run_seed(config: dict[str, Any]) -> int:
    """The run's seed (conf/train.yaml): it draws the initial weights, batch order and augmentation."""
    return check_count("seed", config.get("seed"), 0)


def build_module(config: dict[str, Any], input_shape: tuple[int, ...], num_classes: int,
                 record: dict[str, Any] | None = None) -> ClassifierModule:
    seed = run_seed(config)
    seed_everything(seed, workers=True, verbose=False)  # initial weights follow the run's seed
    network = build_network(config, tuple(input_shape), num_classes, record)
    scheduler = build(config["scheduler"], "scheduler") if config.get("scheduler") else None
    module = ClassifierModule(
        net=network.net, criterion=build(config["criterion"], "criterion"),
        optimizer=build(config["optimizer"], "optimizer"), scheduler=scheduler,
        recipe=network.recipe, ensemble=network.ensemble, member_records=network.member_records,
        input_shape=tuple(input_shape), num_classes=num_classes, seed=seed,
        fit_epochs=config["trainer"]["max_epochs"], config=config)
    module.data_spec = (record or {}).get("data")  # a checkpoint's data spec stays with the module
    return module


def build_run(config: dict[str, Any], record: dict[str, Any] | None = None) -> Parts:
    """The data module (nothing loaded yet) and the module, built once for one fit; the recipes are
    handed the run's context (facts and services) before anything checks them."""
    dm = build_datamodule(config)
    module = build_module(config, dm.input_shape, dm.num_classes, record)
    dm.include_index = module.recipe.uses_sample_index or module.ensemble.uses_sample_index
    dm.shuffle_seed = module.seed  # the run's seed draws batch order and augmentation; data.seed the split
    module.recipe.setup(run_context(module, dm))
    return Parts(dm, module)


def run_context(module: ClassifierModule, dm: TensorDataModule) -> RunContext:
    """What the plug-ins of this run may know and call (archfuse.context)."""
    shape, classes = tuple(dm.input_shape), dm.num_classes

    def load_network(path: str, key: str) -> nn.Module:
        return member_from_checkpoint(MemberSpec(checkpoint=path, key=key), shape, classes)[0]

    return RunContext(input_shape=shape, num_classes=classes, seed=module.seed, epochs=module.fit_epochs, data=dm,
                      make_optimizer=lambda params: module.optimizer_factory(params=params), load_network=load_network)


def module_from_checkpoint(path: str, key: str = "ckpt") -> ClassifierModule:
    """The trained module of any archfuse checkpoint (best, last, a recipe's final model, an ensemble),
    rebuilt from the run config and structure record it carries; loaded with weights_only."""
    ckpt = read_checkpoint(path, key)
    hp = ckpt["hyper_parameters"]
    module = build_module(hp["config"], tuple(hp["input_shape"]), hp["num_classes"], ckpt.get(RECORD_KEY))
    try:
        module.load_state_dict(ckpt["state_dict"])
    except RuntimeError as err:
        raise ConfigError(key, f"{path}: weights do not fit the model its config builds: {err}") from None
    return module
