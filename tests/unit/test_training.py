"""Trainer, callbacks, optimizer/scheduler and cost options have the effect they promise."""

import logging

import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from omegaconf import OmegaConf

from archfuse.callbacks import ResumeCheckpoint
from archfuse.cost import measure_cost, measure_latency_ms
from archfuse.models.build import build_model
from archfuse.trainer import build_trainer, quiet_lightning
from archfuse.validate import validate
from conftest import compose_train, data_module, model_config


def config_of(overrides, tmp_path):
    return OmegaConf.to_container(compose_train(overrides, tmp_path), resolve=True)


def test_trainer_threads_logger_and_checkpoints(tmp_path):
    before = torch.get_num_threads()
    try:
        trainer = build_trainer(config_of(["trainer.num_threads=1", "trainer.max_epochs=3"], tmp_path), tmp_path / "r")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    assert trainer.max_epochs == 3
    assert trainer.logger.log_dir.rstrip("/") == str(tmp_path / "r")  # events directly in the run directory
    (ckpt,) = [c for c in trainer.callbacks if isinstance(c, ModelCheckpoint)]
    # best.ckpt: the best epoch's weights alone; last.ckpt (the resume point) is ResumeCheckpoint's
    assert (ckpt.dirpath, ckpt.monitor, ckpt.mode, ckpt.save_last, ckpt.save_weights_only) == (
        str(tmp_path / "r" / "checkpoints"), "val/acc", "max", False, True)
    (resume,) = [c for c in trainer.callbacks if isinstance(c, ResumeCheckpoint)]
    assert (resume.path, resume.every_n_epochs) == (tmp_path / "r" / "checkpoints" / "last.ckpt", 1)


def test_early_stopping_option_adds_the_callback(tmp_path):
    trainer = build_trainer(config_of(["callbacks=early_stopping"], tmp_path), tmp_path / "r")
    (stop,) = [c for c in trainer.callbacks if isinstance(c, EarlyStopping)]
    assert (stop.monitor, stop.patience) == ("val/acc", 3)
    plain = build_trainer(config_of([], tmp_path), tmp_path / "r2")
    assert not [c for c in plain.callbacks if isinstance(c, EarlyStopping)]


def test_quiet_mode_turns_off_progress_bar_and_summary(tmp_path):
    trainer = build_trainer(config_of([], tmp_path), tmp_path / "r", quiet=True)
    assert trainer.progress_bar_callback is None
    assert not any(type(c).__name__ == "ModelSummary" for c in trainer.callbacks)


def test_lightning_keeps_its_device_lines_but_not_its_product_tips(tmp_path, caplog):
    quiet_lightning(False)
    with caplog.at_level(logging.INFO):
        build_trainer(config_of([], tmp_path), tmp_path / "r")
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("GPU available") for line in lines), lines
    assert not any("Tip:" in line for line in lines), lines


def test_optimizer_and_scheduler_come_from_config(tmp_path):
    config = config_of(["optimizer._target_=torch.optim.SGD", "optimizer.lr=0.05", "+optimizer.momentum=0.9",
                        "scheduler=step", "scheduler.step_size=2", "model=mlp"], tmp_path)
    module = validate(config).module
    out = module.configure_optimizers()
    optimizer, scheduler = out["optimizer"], out["lr_scheduler"]["scheduler"]
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.defaults["momentum"] == 0.9
    assert optimizer.param_groups[0]["lr"] == 0.05
    assert isinstance(scheduler, torch.optim.lr_scheduler.StepLR) and scheduler.step_size == 2
    plain = validate(config_of(["model=mlp", "scheduler=none"], tmp_path)).module.configure_optimizers()
    assert isinstance(plain, torch.optim.Adam)


def test_cost_counts_params_macs_and_uses_the_latency_batch_size():
    net = build_model(model_config("mlp", hidden_sizes=[16]), 1, 10, (8, 8))
    cost = measure_cost(net, (1, 8, 8), batch_size=4, repeats=3, warmup=1)
    assert cost["params"] == 64 * 16 + 16 + 16 * 10 + 10
    assert cost["macs"] == 64 * 16 + 16 * 10
    assert cost["size_bytes"] == 4 * cost["params"] and cost["latency_batch_size"] == 4
    assert net.training  # measuring leaves the network as it found it


def test_latency_stops_at_its_time_budget_with_three_timed_passes(monkeypatch):
    import archfuse.cost as cost_module

    clock = iter(range(0, 10_000, 10))  # every reading 10 s later than the one before
    monkeypatch.setattr(cost_module.time, "perf_counter", lambda: float(next(clock)))
    calls = []

    def net(x):
        calls.append(len(x))

    # budget 5 s: the first warm-up pass overruns it, the rest of the warm-up is skipped, 3 passes are timed
    assert measure_latency_ms(net, (1, 8, 8), batch_size=2, repeats=30, warmup=5, max_seconds=5) == 10_000.0
    assert calls == [2] * 4
    calls.clear()
    assert measure_latency_ms(net, (1, 8, 8), batch_size=2, repeats=2, warmup=1, max_seconds=1) == 10_000.0
    assert len(calls) == 3  # fewer than 3 asked: all of them
    calls.clear()
    measure_latency_ms(net, (1, 8, 8), batch_size=2, repeats=6, warmup=2, max_seconds=None)
    assert len(calls) == 8  # no budget: warm-up and every repeat


def test_convnet_head_width_zero_leaves_out_the_hidden_layer():
    net = build_model(model_config("convnet", width=4, depth=2, head_width=0),
                      1, 10, (28, 28))
    linears = [m for m in net.classifier if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 1 and linears[0].in_features == 8 * 7 * 7


def test_worker_processes_deliver_the_same_batches():
    def batches(workers):
        dm = data_module("digits", batch_size=200, num_workers=workers)
        return [(x.sum().item(), y.tolist()) for x, y in dm.val_dataloader()]

    assert batches(1) == batches(0)


def test_debug_options_shorten_the_run(tmp_path):
    fast = compose_train(["debug=fast"], tmp_path)
    assert (fast.trainer.max_epochs, fast.data.train_subset, fast.trainer.limit_val_batches) == (1, 256, 2)
    overfit = compose_train(["debug=overfit"], tmp_path)
    assert (overfit.trainer.overfit_batches, overfit.trainer.max_epochs) == (2, 20)
