"""recipe=distill: Hinton knowledge distillation of the run's model (the student) from a teacher.

loss = (1 - alpha) * CE(student, y) + alpha * T^2 * KL(teacher_T || student_T), where ``_T`` are the
softmax outputs at temperature T (the T^2 keeps the soft term's gradients on the scale of the hard term's).

The teacher is any archfuse checkpoint (``teacher=PATH``: a plain run, a recipe's final model, an
ensemble), or a model config trained first in the same run (``teacher_model=seed000``: a short plain fit
on the training split with the run's optimizer, batch size and epochs). It is held by this recipe, never
by the LightningModule: it is not optimised, not saved in the student's checkpoints and not costed.
"""

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from lightning.pytorch import Callback
from torch import Tensor, nn

from archfuse.checks import check_number, check_positive
from archfuse.context import DataView, RunContext
from archfuse.errors import ConfigError
from archfuse.evaluation import net_device, split_metrics
from archfuse.models.build import build_model, model_config_names, named_model_config
from archfuse.recipes.base import AfterFit, Recipe

KEY = "recipe.distill"


def model_node(name: Any) -> dict[str, Any]:
    """A teacher model config: the name of one in conf/model/, or a config with its own _target_."""
    if isinstance(name, dict) and "_target_" in name:
        return dict(name)
    node = named_model_config(name)
    if node is None:
        raise ConfigError(f"{KEY}.teacher_model", f"no model config {name!r}; choose one of "
                          f"{', '.join(model_config_names())}")
    return node


class _PrepareTeacher(Callback):
    def __init__(self, recipe: "Distill"):
        self.recipe = recipe

    def on_fit_start(self, trainer: Any, pl_module: Any) -> None:
        self.recipe.prepare(pl_module.device)


class Distill(Recipe):
    """The student learns from the teacher's softened outputs as well as from the labels."""

    uses_sample_index = True  # the teacher's outputs are looked up by sample when augmentation is off

    def __init__(self, *, teacher: str | None, teacher_model: Any, temperature: float, alpha: float,
                 teacher_epochs: int | None):
        if (teacher is None) == (teacher_model is None):
            raise ConfigError(f"{KEY}.teacher", "give the teacher: recipe.distill.teacher=PATH (an archfuse "
                              "checkpoint) or recipe.distill.teacher_model=NAME (a model config trained first), "
                              "exactly one of them")
        check_positive(f"{KEY}.teacher_epochs", teacher_epochs, what="a positive integer or null", none_ok=True)
        self.temperature = float(check_number(f"{KEY}.temperature", temperature, 0.0, low_open=True))
        self.alpha = float(check_number(f"{KEY}.alpha", alpha, 0.0, 1.0, what="a number >= 0 and <= 1"))
        self.base_loss_weight = 1.0 - self.alpha
        self.teacher_path, self.teacher_epochs = teacher, teacher_epochs
        self.teacher_model = model_node(teacher_model) if teacher_model is not None else None
        self.teacher: nn.Module | None = None
        self._trained = teacher is not None  # a checkpoint's teacher is trained already
        self._cache: Tensor | None = None  # the teacher's logits per sample index (augmentation off)
        self._known: Tensor | None = None
        self.run: RunContext | None = None

    def setup(self, run: RunContext) -> None:
        self.run = run

    # -- the teacher --------------------------------------------------------------------------
    def load_teacher(self) -> nn.Module:
        """The teacher network (untrained for teacher_model); errors name recipe.distill.teacher."""
        if self.teacher is None:
            run = self.run
            with torch.random.fork_rng():  # the student's initial weights do not depend on the teacher
                if self.teacher_path is not None:
                    net = run.load_network(str(self.teacher_path), f"{KEY}.teacher")
                else:
                    c, h, w = run.input_shape
                    torch.manual_seed(0)
                    net = build_model(self.teacher_model, c, run.num_classes, (h, w), key=f"{KEY}.teacher_model")
            self.teacher = net.eval().requires_grad_(False)
        return self.teacher

    def check(self, net: nn.Module, data: DataView) -> None:
        self.load_teacher()

    def prepare(self, device: torch.device) -> nn.Module:
        """The teacher on ``device``, trained (teacher_model) once per run."""
        teacher = self.load_teacher()
        if not self._trained:
            self._fit_teacher(teacher, device)
            self._trained = True
        if next(teacher.parameters()).device != device:
            teacher.to(device)
        return teacher

    def _fit_teacher(self, teacher: nn.Module, device: torch.device) -> None:
        """A plain fit: the run's optimizer, batch size and epochs (or teacher_epochs), no augmentation."""
        run = self.run
        x, y = run.data.split_tensors("train")
        epochs = self.teacher_epochs or run.epochs
        teacher.to(device).train().requires_grad_(True)
        optimizer = run.make_optimizer(teacher.parameters())
        order = torch.Generator().manual_seed(run.seed)
        with torch.random.fork_rng(), torch.enable_grad():
            torch.manual_seed(run.seed)
            for _ in range(epochs):
                for idx in torch.randperm(len(y), generator=order).split(run.data.batch_size):
                    loss = F.cross_entropy(teacher(x[idx].to(device)), y[idx].to(device))
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
        teacher.eval().requires_grad_(False)

    @torch.no_grad()
    def _teacher_logits(self, x: Tensor) -> Tensor:
        with torch.autocast(x.device.type, enabled=False):
            return self.teacher(x.float()).float()

    def teacher_logits(self, batch: tuple[Tensor, ...]) -> Tensor:
        """The teacher's logits for this training batch.

        With data.augment=none the images of a sample are the same every epoch, so each sample's teacher
        output is computed once (the first time it is seen) and looked up by its index afterwards. When
        data.augment is not none, every epoch draws new images: the teacher must see the same augmented
        batch as the student, so it runs on each batch.
        """
        x = batch[0]
        self.prepare(x.device)
        if len(batch) < 3 or self.run.data.augments:
            return self._teacher_logits(x)
        index = batch[2].to(x.device)
        need = int(index.max()) + 1
        if self._cache is None or len(self._cache) < need or self._cache.device != x.device:
            size = max(need, len(self._cache) if self._cache is not None else 0)
            cache = torch.zeros(size, self.run.num_classes, device=x.device)
            known = torch.zeros(size, dtype=torch.bool, device=x.device)
            if self._cache is not None:
                cache[: len(self._cache)] = self._cache.to(x.device)
                known[: len(self._known)] = self._known.to(x.device)
            self._cache, self._known = cache, known
        missing = ~self._known[index]
        if missing.any():
            self._cache[index[missing]] = self._teacher_logits(x[missing])
            self._known[index[missing]] = True
        return self._cache[index]

    # -- the seams ------------------------------------------------------------------------------
    def loss_terms(self, logits: Tensor, batch: tuple[Tensor, ...], net: nn.Module) -> dict[str, Tensor]:
        if self.alpha == 0.0:
            return {}  # plain cross-entropy: the teacher is not consulted
        return {"kd": self.alpha * self.soft_loss(logits, self.teacher_logits(batch))}

    def soft_loss(self, student: Tensor, teacher: Tensor) -> Tensor:
        """T^2 * KL(teacher_T || student_T), averaged over the batch."""
        t = self.temperature
        return F.kl_div(F.log_softmax(student.float() / t, -1), F.log_softmax(teacher.float() / t, -1),
                        reduction="batchmean", log_target=True) * (t * t)

    def callbacks(self) -> list[Any]:
        return [_PrepareTeacher(self)]

    def after_fit(self, step: AfterFit) -> dict[str, Any]:
        """Changes nothing: reports the teacher (its accuracy beside the student's before/after)."""
        from archfuse.cost import count_params

        teacher = self.prepare(net_device(step.net))
        val, test = split_metrics(teacher, step.data, "val"), split_metrics(teacher, step.data, "test")
        source = (str(Path(self.teacher_path).expanduser().resolve()) if self.teacher_path is not None
                  else self.teacher_model["_target_"])
        params = count_params(teacher)
        return {"temperature": self.temperature, "alpha": self.alpha,
                "teacher_val_acc": val["acc"], "teacher_test_acc": test["acc"],  # TensorBoard scalars
                "teacher": {"source": source, "val/acc": val["acc"], "test/acc": test["acc"], "params": params},
                "summary": f"teacher test/acc {test['acc']:.4f} ({params:,} params), T={self.temperature:g}, "
                           f"alpha={self.alpha:g}"}
