"""The structure recipes through the real CLI: a channel-pruned run whose final checkpoint archfuse-eval
rebuilds and tests to the run's own figure, a chain whose steps each start from the previous one's
network, and a bad option that stops the run before anything is written."""

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import FAST, run_cli, run_dirs, summary


def eval_acc(cwd, ckpt: str) -> float:
    proc = run_cli(cwd, f"ckpt={ckpt}", "quiet=true", entry="archfuse.eval")
    return float(next(line for line in proc.stdout.splitlines() if line.startswith("test/acc:")).split(": ")[1])


def test_prune_channels_run_reloads_in_archfuse_eval(workdir):
    proc = run_cli(workdir, *FAST, "model=seed003", "recipe=prune_channels", "recipe.prune_channels.ratio=0.5")
    (run,) = run_dirs(workdir)
    s = summary(run)
    (step,) = s["recipe"]
    assert step["name"] == "prune_channels"
    assert step["channels"]["features.0"] == [32, 16] and step["channels"]["classifier.3"] == [10, 10]
    assert step["after"]["params"] == s["cost"]["params"] < 0.3 * step["before"]["params"]
    assert "recipe 1: prune_channels" in proc.stdout and "params kept 0.25" in proc.stdout
    events = EventAccumulator(str(run), size_guidance={"scalars": 0})
    events.Reload()  # the step's figures are TensorBoard scalars too
    assert events.Scalars("recipe/1_prune_channels/after/params")[0].value == step["after"]["params"]
    assert events.Scalars("recipe/1_prune_channels/params_kept")[0].value == pytest.approx(step["params_kept"])
    assert s["checkpoint"].endswith("checkpoints/final.ckpt")
    assert eval_acc(workdir, s["checkpoint"]) == pytest.approx(s["metrics"]["test/acc"], abs=1e-4)


def test_a_chain_applies_its_steps_in_order(workdir):
    run_cli(workdir, *FAST, "model=seed003", "recipe=[prune,cut]", "recipe.cut.last=1",
            "recipe.prune.amount=0.3")
    (run,) = run_dirs(workdir)
    s = summary(run)
    prune, cut = s["recipe"]
    assert [prune["name"], cut["name"]] == ["prune", "cut"]
    assert prune["sparsity"] == pytest.approx(0.3, abs=1e-3)
    assert cut["before"]["params"] == prune["after"]["params"] and cut["before"]["test/acc"] == prune["after"]["test/acc"]
    # seed003 without its second block: the head reads a 32x14x14 map instead of 64x7x7, so it grows
    assert cut["blocks_after"] == 1 and cut["after"]["params"] > cut["before"]["params"]
    assert cut["after"]["macs"] < cut["before"]["macs"]
    assert eval_acc(workdir, s["checkpoint"]) == pytest.approx(s["metrics"]["test/acc"], abs=1e-4)


def test_cutting_more_blocks_than_exist_is_one_clear_error(workdir):
    proc = run_cli(workdir, *FAST, "recipe=cut", "recipe.cut.blocks=[0,7]", check=False)
    assert proc.returncode == 2
    assert "recipe.cut.blocks: block 7 does not exist: the model has 3 conv blocks (0..2)" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    runs = workdir / "outputs" / "runs"
    assert not runs.exists() or not list(runs.iterdir())
