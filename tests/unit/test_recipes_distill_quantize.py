"""recipe=distill and recipe=quantize in-process: the distillation loss uses the teacher, the teacher's
outputs are computed once per sample without augmentation, the int8 network holds int8 weights and
quantized ops, is smaller, and reloads from its checkpoint to the same outputs."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn

from conftest import REPO, cli_env, compose_train, data_module, plugin

from archfuse.build import build_module, build_run, module_from_checkpoint, run_context
from archfuse.errors import ConfigError
from archfuse.recipes.base import AfterFit
from archfuse.evaluation import split_metrics
from archfuse.recipes.quantize import Int8Net
from archfuse.run.fit import save_final

SHAPE = (1, 28, 28)


def config(tmp_path: Path, *overrides: str, model: tuple[str, ...] = ("model=mlp", "model.hidden_sizes=[32]")) -> dict:
    cfg = compose_train(["debug=fast", *model, "data.augment=none", *overrides], tmp_path)
    return OmegaConf.to_container(cfg, resolve=True)


def saved_model(tmp_path: Path, name: str, input_shape=SHAPE, *overrides: str) -> Path:
    """A real archfuse checkpoint of an untrained network (the run's final-model format)."""
    module = build_module(config(tmp_path, *overrides), input_shape, 10)
    path = tmp_path / f"{name}.ckpt"
    save_final(module, path)
    return path


def batch(n: int = 32):
    dm = data_module("digits", augment="none")
    x, y = dm.split_tensors("train")
    return dm, x[:n], y[:n]


# -- distill -----------------------------------------------------------------------------------
def test_the_distillation_loss_uses_the_teacher(tmp_path):
    teacher_path = saved_model(tmp_path, "teacher", SHAPE, "seed=7")
    dm, x, y = batch()
    losses = {}
    torch.set_grad_enabled(False)
    for alpha in (0.0, 0.5, 1.0):
        module = build_module(config(tmp_path, "recipe=distill", f"recipe.distill.teacher={teacher_path}",
                                     f"recipe.distill.alpha={alpha}", "recipe.distill.temperature=2.0"), SHAPE, 10)
        module.recipe.setup(run_context(module, dm))
        module.recipe.check(module.net, dm)
        logits = module.net(x)
        base = F.cross_entropy(logits, y)
        loss, terms = module.recipe.total_loss(base, logits, (x, y), module.net)
        teacher = module.recipe.steps["distill"].teacher
        soft = F.kl_div(F.log_softmax(logits / 2, -1), F.softmax(teacher(x) / 2, -1), reduction="batchmean") * 4
        assert float(loss) == pytest.approx(float((1 - alpha) * base + alpha * soft), rel=1e-5)
        losses[alpha] = float(loss)
        if alpha == 0.0:
            assert terms == {} and float(loss) == pytest.approx(float(base), rel=1e-6)  # plain cross-entropy
        else:
            assert set(terms) == {"distill_kd"}
    assert len(set(losses.values())) == 3
    # A student equal to its teacher learns nothing from it: the soft term is zero.
    student = build_module(config(tmp_path, "recipe=distill", f"recipe.distill.teacher={teacher_path}"), SHAPE, 10)
    student.recipe.setup(run_context(student, dm))
    student.recipe.check(student.net, dm)
    student.net.load_state_dict(student.recipe.steps["distill"].teacher.state_dict())
    _, terms = student.recipe.total_loss(torch.tensor(0.0), student.net(x), (x, y), student.net)
    assert float(terms["distill_kd"]) == pytest.approx(0.0, abs=1e-6)
    # The teacher is the recipe's, not the module's: not trained, not saved, not costed.
    assert not any(k.startswith("recipe") for k in student.state_dict())
    assert sum(p.numel() for p in student.parameters()) == sum(p.numel() for p in student.net.parameters())
    torch.set_grad_enabled(True)


@pytest.mark.parametrize("augment, expected_calls", [("none", 1), ("shift", 2)])
def test_teacher_outputs_are_computed_once_per_sample_without_augmentation(tmp_path, augment, expected_calls):
    from archfuse.trainer import build_trainer

    teacher_path = saved_model(tmp_path, "teacher")
    cfg = config(tmp_path, "recipe=distill", f"recipe.distill.teacher={teacher_path}", f"data.augment={augment}",
                 "trainer.max_epochs=2", "trainer.limit_val_batches=1")
    parts = build_run(cfg)
    parts.module.recipe.check(parts.module.net, parts.datamodule)
    distill = parts.module.recipe.steps["distill"]
    seen = []
    distill.teacher.register_forward_hook(lambda m, i, o: seen.append(len(i[0])))
    build_trainer(cfg, tmp_path / "run", quiet=True).fit(parts.module, datamodule=parts.datamodule)
    assert sum(seen) == expected_calls * parts.datamodule.split_size("train")


def check_teacher(tmp_path: Path, teacher: Path) -> None:
    parts = build_run(config(tmp_path, "recipe=distill", f"recipe.distill.teacher={teacher}"))
    parts.module.recipe.check(parts.module.net, parts.datamodule)


def test_bad_teachers_are_clear_errors(tmp_path):
    with pytest.raises(ConfigError, match="recipe.distill.teacher: .*missing.ckpt does not exist"):
        check_teacher(tmp_path, tmp_path / "missing.ckpt")
    damaged = tmp_path / "damaged.ckpt"
    damaged.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="recipe.distill.teacher: .*is not a readable checkpoint"):
        check_teacher(tmp_path, damaged)
    small = saved_model(tmp_path, "small", (1, 16, 16))
    with pytest.raises(ConfigError, match="recipe.distill.teacher: .*trained on 1x16x16 inputs with 10 classes, "
                                          "but this run's data gives 1x28x28"):
        check_teacher(tmp_path, small)
    with pytest.raises(ConfigError, match="recipe.distill.teacher: give the teacher"):
        plugin("recipe", "distill")
    with pytest.raises(ConfigError, match="recipe.distill.teacher_model: no model config 'nope'"):
        plugin("recipe", "distill", teacher_model="nope")
    with pytest.raises(ConfigError, match=r"recipe.distill.alpha: must be a number >= 0 and <= 1, got 1.5"):
        plugin("recipe", "distill", teacher_model="mlp", alpha=1.5)


# -- quantize ----------------------------------------------------------------------------------
def quantized(tmp_path: Path, mode: str = "static", model: tuple[str, ...] = ("model=seed003",)):
    cfg = config(tmp_path, "recipe=quantize", f"recipe.quantize.mode={mode}", "recipe.quantize.compile=false",
                 "recipe.quantize.calibration_batches=2", model=model)
    parts = build_run(cfg)
    module, dm = parts.module, parts.datamodule
    module.recipe.check(module.net, dm)
    fp32 = {name: p.detach().clone() for name, p in module.net.named_parameters()}
    step = AfterFit(net=module.net, data=dm, run=run_context(module, dm), log_dir=tmp_path, fine_tune=None,
                    evaluate=None)
    (name, recipe), = module.recipe.named_after_fit_steps()
    report = recipe.after_fit(step)
    module.net = step.net
    return module, dm, fp32, report


@pytest.mark.parametrize("mode", ["static", "dynamic"])
def test_the_int8_network_has_int8_weights_and_quantized_ops_and_is_smaller(tmp_path, mode):
    from archfuse.cost import count_params, size_bytes

    module, dm, fp32, report = quantized(tmp_path, mode)
    fp32_bytes = sum(t.numel() * 4 for t in fp32.values())
    net = module.net
    assert isinstance(net, Int8Net)
    int8 = [p for p in net.parameters() if p.dtype == torch.int8]
    assert len(int8) == 4  # two convolutions and two linear layers
    assert count_params(net) == sum(t.numel() for t in fp32.values())  # same weights, stored in int8
    assert size_bytes(net) < fp32_bytes / 3.5
    ops = report["quantized_ops"]
    assert ops["dequantize_per_channel"] == 4  # the weights
    assert ops["quantize_per_tensor"] >= 1  # the activations (dynamic: choose_qparams then quantize)
    if mode == "dynamic":
        assert ops["choose_qparams"] >= 1
    else:
        assert report["calibration_samples"] == 2 * dm.batch_size


@pytest.mark.parametrize("model", [("model=seed003",), ("model=convnet", "model.batch_norm=true", "model.width=8")],
                         ids=["seed003", "convnet_batch_norm"])
def test_the_int8_network_reloads_from_its_checkpoint_to_the_same_outputs(tmp_path, model):
    module, dm, _, _ = quantized(tmp_path, "static", model)  # batch norms are folded into the int8 weights
    path = tmp_path / "final.ckpt"
    save_final(module, path)
    torch.manual_seed(123)  # the rebuild does not depend on the random state
    again = module_from_checkpoint(str(path))
    assert isinstance(again.net, Int8Net)
    x = dm.split_tensors("test")[0][:]  # the split's images as one float tensor
    with torch.no_grad():
        assert torch.equal(module.net(x), again.net(x))
    assert split_metrics(again.net, dm, "test") == split_metrics(module.net, dm, "test")


def test_quantize_refuses_what_it_cannot_run(tmp_path):
    class Branchy(nn.Module):  # data-dependent control flow: torch.export cannot trace it
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(784, 10)

        def forward(self, x):
            return self.fc(x.flatten(1)) if x.sum() > 0 else -self.fc(x.flatten(1))

    dm = data_module("digits")
    with pytest.raises(ConfigError, match="recipe.quantize: Branchy cannot be exported for int8"):
        plugin("recipe", "quantize").check(Branchy(), dm)
    with pytest.raises(ConfigError, match="recipe.quantize.mode: mode=dynamic quantizes Linear layers only and "
                                          "Sequential has none"):
        plugin("recipe", "quantize", mode="dynamic").check(nn.Sequential(nn.Conv2d(1, 10, 28), nn.Flatten()), dm)
    with pytest.raises(ConfigError, match="recipe.quantize.mode: unknown mode 'int4'; choose one of dynamic, "
                                          "static, qat"):
        plugin("recipe", "quantize", mode="int4")
    with pytest.raises(ConfigError, match="recipe.quantize.calibration_batches: must be an integer >= 1"):
        plugin("recipe", "quantize", calibration_batches=0)


SCRIPT = """
import torch
from archfuse.models.seed003 import Seed003
from archfuse.recipes.quantize import Int8Net, convert, prepare
for mode in ("static", "dynamic", "qat"):
    prepared = prepare(Seed003().train(mode == "qat"), (1, 28, 28), mode)
    prepared(torch.randn(8, 1, 28, 28))
    Int8Net(convert(prepared), compile=False)(torch.randn(3, 1, 28, 28))
print("done")
"""


def test_no_deprecation_warning_reaches_the_user():
    proc = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "-W", "error::FutureWarning",
                           "-c", SCRIPT], env={**cli_env(), "PYTHONPATH": str(REPO / "src")},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "done", proc.stderr[-3000:]
    assert "deprecat" not in proc.stderr.lower(), proc.stderr


@pytest.mark.slow
def test_the_compiled_int8_network_runs_onednn_int8_kernels(tmp_path):
    module, dm, _, _ = quantized(tmp_path, "static")
    eager = module.net
    compiled = Int8Net(eager.graph, compile=True)
    x, _ = dm.split_tensors("test")
    with torch.inference_mode():
        compiled(x[:64].clone())  # compiles, for an inference tensor
    # A plain tensor under no_grad is another compile (dynamo guards on both): it gets int8 kernels too.
    with torch.no_grad():
        compiled(x[:64])
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            out = compiled(x[:64])
        reference = eager(x[:64])
    kernels = {e.name for e in prof.events()}
    assert any(name.startswith("onednn::qconv") for name in kernels), sorted(kernels)
    assert any(name.startswith("onednn::qlinear") for name in kernels), sorted(kernels)
    assert (out.argmax(-1) == reference.argmax(-1)).float().mean() > 0.95
