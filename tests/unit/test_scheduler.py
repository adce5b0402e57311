"""The learning-rate schedule and numeric precision chosen by default, and how they adapt to the fit."""

import math

import pytest
import torch
from omegaconf import OmegaConf

from archfuse.errors import ConfigError
from archfuse.scheduler import warmup_cosine
from archfuse.trainer import build_trainer, native_bf16, resolve_precision
from archfuse.validate import validate
from conftest import compose_train


def rates(epochs, **kwargs):
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    schedule = warmup_cosine(optimizer, fit_epochs=epochs, **{"warmup_epochs": 0, "final_lr_ratio": 0.0, **kwargs})
    out = []
    for _ in range(epochs):
        out.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    return out


def test_cosine_decays_from_the_rate_towards_the_floor_over_the_fit():
    lr = rates(10)
    assert lr[0] == pytest.approx(0.1)
    assert all(a > b for a, b in zip(lr, lr[1:]))  # strictly decreasing
    assert lr[5] == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert 0 < lr[-1] < 0.005  # the last epoch trains at a small but non-zero rate
    floor = rates(10, final_lr_ratio=0.1)
    assert min(floor) > 0.01 and floor[0] == pytest.approx(0.1)


def test_warm_up_rises_linearly_then_decays():
    lr = rates(8, warmup_epochs=3)
    assert lr[:4] == pytest.approx([0.025, 0.05, 0.075, 0.1])
    assert all(a > b for a, b in zip(lr[3:], lr[4:]))


@pytest.mark.parametrize("kwargs, key", [({"warmup_epochs": -1}, "scheduler.warmup_epochs"),
                                         ({"final_lr_ratio": 2.0}, "scheduler.final_lr_ratio")])
def test_bad_schedule_values_name_their_key(kwargs, key):
    with pytest.raises(ConfigError) as err:
        rates(5, **kwargs)
    assert err.value.key == key


def test_the_schedule_spans_the_run_or_the_fine_tune_it_serves(tmp_path):
    config = OmegaConf.to_container(compose_train(["model=mlp", "model.hidden_sizes=[8]", "trainer.max_epochs=7"],
                                                  tmp_path), resolve=True)
    module = validate(config).module
    optimizer, schedule = module._kept_optimizers  # built by validation, before any Trainer exists
    factors = [f(e) for f in schedule.lr_lambdas for e in range(7)]
    assert factors[0] == 1.0 and factors[-1] == pytest.approx(0.5 * (1 + math.cos(math.pi * 6 / 7)))
    trainer = build_trainer(config, tmp_path / "tune", quiet=True, resumable=False, max_epochs=2)
    module.trainer = trainer  # a recipe's fine-tune: the schedule follows its own 2 epochs
    tuned = module.make_scheduler(module.make_optimizer())
    assert tuned.lr_lambdas[0](1) == pytest.approx(0.5)


def test_scheduler_none_keeps_the_rate(tmp_path):
    config = OmegaConf.to_container(compose_train(["model=mlp", "model.hidden_sizes=[8]", "scheduler=none"],
                                                  tmp_path), resolve=True)
    module = validate(config).module
    assert module._kept_optimizers[1] is None and module.configure_optimizers() is not None


def test_auto_precision_is_bf16_where_the_cpu_computes_it_natively():
    native = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    assert native_bf16("cpu") == native
    assert resolve_precision("auto", "cpu") == ("bf16-mixed" if native else "32-true")
    assert resolve_precision("32-true", "cpu") == "32-true" and resolve_precision("16-mixed", "cpu") == "16-mixed"


def test_the_default_precision_is_fp32_on_every_host_and_auto_is_resolved(tmp_path):
    config = OmegaConf.to_container(compose_train(["trainer.accelerator=cpu"], tmp_path), resolve=True)
    assert config["trainer"]["precision"] == "32-true"
    assert build_trainer(config, tmp_path / "run", quiet=True).precision == "32-true"
    config["trainer"]["precision"] = "auto"
    trainer = build_trainer(config, tmp_path / "run_auto", quiet=True)
    assert trainer.precision == resolve_precision("auto", "cpu")
