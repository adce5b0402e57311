"""The command line checked against the composed config before Hydra runs (archfuse.command_line):
each bad override is one line naming its key and what it accepts; good command lines pass."""

import pytest

from archfuse.command_line import check_command_line
from archfuse.config_dir import config_dir

BAD = [
    (["recipe=[distill,prunex]"], "recipe: unknown option 'prunex'; choose one of cut, distill, grow,"),
    (["-m", "model=seed000,seed01"], "model: unknown option 'seed01'; choose one of convnet, mlp, seed000,"),
    (["trainer.max_epoch=3"], "trainer.max_epoch: unknown key; trainer accepts: accelerator, check_val_every_n_epoch,"),
    (["data.augmnt=shift"], "data.augmnt: unknown key; data accepts: augment, batch_size, image_size,"),
    (["model=convnet", "model.widht=3"], "model.widht: unknown key; model accepts: activation, batch_norm, depth,"),
    (["model.widht=3"], "model.widht: unknown key; model has no options to set"),
    (["modle=seed003"], "modle: unknown key; the config accepts: callbacks, ckpt_path, cost,"),
    (["+seed=3"], "seed: already in the config; set it without the + (seed=VALUE)"),
    (["-m", "model=convnet", "model.widht=8,16"], "model.widht: unknown key; model accepts: activation,"),
    (["-m", "model=mlp", "model.hidden_size=[16],[32,16]"], "model.hidden_size: unknown key; model accepts:"),
]


@pytest.mark.parametrize("argv, message", BAD, ids=[m.split(":")[0] + str(i) for i, (_, m) in enumerate(BAD)])
def test_a_bad_override_is_named(argv, message):
    found = check_command_line(argv, config_dir(), "train")
    assert found is not None and found.startswith(message), found


@pytest.mark.parametrize("argv", [
    [], ["model=convnet", "model.width=16"], ["-m", "model=seed000,seed001", "seed=1,2"],
    ["-m", "search=width_depth_activation", "hydra.sweeper.n_trials=3", "model.width=choice(8,16)"],
    ["recipe=[distill,prune_channels]", "recipe.distill.teacher_model=mlp"], ["+model.extra=1"],
    ["-m", "model=mlp", "model.hidden_sizes=[16],[32,16]"], ["~cost"],
    ["--cfg", "job", "modle=1"],  # Hydra's own flags: left to Hydra
])
def test_good_command_lines_pass(argv):
    assert check_command_line(argv, config_dir(), "train") is None


def test_archfuse_eval_keys():
    assert check_command_line(["ckt=a.ckpt"], config_dir(), "eval").startswith(
        "ckt: unknown key; the config accepts: ckpt, data, paths, quiet, trainer")
    assert check_command_line(["ckpt=a.ckpt", "+data.batch_size=8"], config_dir(), "eval") is None
    assert check_command_line(["ckpt=a.ckpt", "data.batch_size=8"], config_dir(), "eval") == (
        "data.batch_size: not in the config (data is empty here); add it with +data.batch_size=VALUE")
