"""Batch-level augmentation: what each kind does to images, that it is seeded, that it touches training
batches only, and that bad strengths are refused naming their key."""

import math

import pytest
import torch
from lightning.pytorch import Callback, Trainer
from omegaconf import OmegaConf

from archfuse.data.augment import BatchAugment
from archfuse.errors import ConfigError
from archfuse.validate import validate
from conftest import compose_train


def augment(kind="affine", shift=0.1, rotation=10.0, scale=0.1, shear=5.0) -> BatchAugment:
    return BatchAugment(kind, shift, rotation, scale, shear)


def dot_images(n: int, size: int = 28) -> torch.Tensor:
    """n images, each a single bright 2x2 square in the middle of a blank (zero) field."""
    x = torch.zeros(n, 1, size, size)
    x[:, :, 13:15, 13:15] = 1.0
    return x


def centroids(x: torch.Tensor) -> torch.Tensor:
    """(n, 2) centre of mass (row, column) of each image."""
    h, w = x.shape[-2:]
    mass = x.sum(dim=(1, 2, 3))
    rows = (x.sum(dim=(1, 3)) * torch.arange(h)).sum(1) / mass
    cols = (x.sum(dim=(1, 2)) * torch.arange(w)).sum(1) / mass
    return torch.stack([rows, cols], 1)


def test_none_leaves_the_batch_as_it_is():
    x = torch.randn(8, 1, 28, 28)
    assert augment("none").active is False and augment("shift").active
    assert augment("none")(x, torch.Generator().manual_seed(0)) is x


def test_shift_moves_each_sample_by_its_own_amount_within_the_limit():
    x = dot_images(64)
    out = augment("shift", shift=0.1)(x, torch.Generator().manual_seed(0))
    moved = centroids(out) - centroids(x)
    assert moved.abs().max() <= 0.1 * 28 + 1e-4  # at most a tenth of the side, each way
    assert moved.abs().max() > 0.5 * 0.1 * 28  # and the draws use the range
    assert len({tuple(m.round(decimals=3).tolist()) for m in moved}) == 64  # every sample its own shift
    assert out.sum(dim=(1, 2, 3)) == pytest.approx(x.sum(dim=(1, 2, 3)), rel=1e-4)  # a shift keeps the ink


def test_affine_with_zero_strengths_is_the_identity():
    x = torch.rand(4, 3, 32, 32)
    out = augment("affine", shift=0.0, rotation=0.0, scale=0.0, shear=0.0)(x, torch.Generator().manual_seed(1))
    assert torch.allclose(out, x, atol=1e-5)


def test_rotation_turns_a_bar_by_at_most_its_limit():
    bar = torch.zeros(32, 1, 29, 29)
    bar[:, :, 14, 4:25] = 1.0  # a horizontal bar through the centre
    out = augment("affine", shift=0.0, rotation=30.0, scale=0.0, shear=0.0)(bar, torch.Generator().manual_seed(2))
    # The bar's angle from its second moments, per image.
    h, w = out.shape[-2:]
    ys, xs = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    m = out[:, 0]
    mass = m.sum((1, 2))
    cy, cx = (m * ys).sum((1, 2)) / mass, (m * xs).sum((1, 2)) / mass
    dy, dx = ys - cy[:, None, None], xs - cx[:, None, None]
    cov_xy, cov_xx, cov_yy = (m * dx * dy).sum((1, 2)), (m * dx * dx).sum((1, 2)), (m * dy * dy).sum((1, 2))
    angles = torch.rad2deg(0.5 * torch.atan2(2 * cov_xy, cov_xx - cov_yy)).abs()
    assert angles.max() <= 30.0 + 1.0
    assert angles.max() > 15.0


def test_scale_enlarges_or_shrinks_within_its_range():
    x = torch.zeros(64, 1, 28, 28)
    x[:, :, 10:18, 10:18] = 1.0
    out = augment("affine", shift=0.0, rotation=0.0, scale=0.25, shear=0.0)(x, torch.Generator().manual_seed(3))
    area = out.sum(dim=(1, 2, 3)) / x.sum(dim=(1, 2, 3))  # ink scales with the square of the factor
    assert area.min() >= 0.75**2 - 0.02 and area.max() <= 1.25**2 + 0.02
    assert area.min() < 0.8 and area.max() > 1.2


def test_pixels_from_outside_the_image_take_the_blank_value():
    blank = torch.tensor([-0.4, 0.1, 2.0]).reshape(1, 3, 1, 1)
    x = blank.expand(16, 3, 20, 20).clone()
    out = augment("affine", shift=0.3, rotation=45.0, scale=0.5, shear=20.0)(x, torch.Generator().manual_seed(4), blank)
    assert torch.allclose(out, x, atol=1e-5)


def test_the_same_seed_draws_the_same_transforms():
    x = torch.rand(16, 1, 28, 28)
    a = augment()(x, torch.Generator().manual_seed(5))
    b = augment()(x, torch.Generator().manual_seed(5))
    c = augment()(x, torch.Generator().manual_seed(6))
    assert torch.equal(a, b) and not torch.allclose(a, c)


@pytest.mark.parametrize("kwargs, key, text", [
    ({"kind": "flip"}, "data.augment", "unknown augmentation 'flip'; choose one of none, shift, affine"),
    ({"shift": 0.5}, "data.shift", "below half the image"),
    ({"shift": -0.1}, "data.shift", "must be a number >= 0"),
    ({"rotation": 200.0}, "data.rotation", "at most 180"),
    ({"scale": 1.0}, "data.scale", "below 1"),
    ({"shear": 75.0}, "data.shear", "at most 60"),
    ({"rotation": "ten"}, "data.rotation", "got 'ten'"),
])
def test_bad_strengths_name_their_key(kwargs, key, text):
    with pytest.raises(ConfigError) as err:
        augment(**kwargs)
    assert err.value.key == key and text in str(err.value)


# -- inside a run: training batches only, drawn from (seed, epoch) -----------------------------------

class Batches(Callback):
    """The batches the training and validation steps receive, with the samples' indices."""

    def __init__(self):
        self.train, self.val = [], []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.train.append((trainer.current_epoch, batch[0].clone(), batch[2].clone()))

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self.val.append((batch[0].clone(), batch[2].clone()))


def fit_batches(tmp_path, *overrides, epochs=2):
    config = OmegaConf.to_container(compose_train(["model=mlp", "model.hidden_sizes=[8]", "data.train_subset=64",
                                                   "data.batch_size=32", *overrides], tmp_path), resolve=True)
    parts = validate(config)
    parts.datamodule.include_index = True  # batches carry (x, y, index) so they can be matched to the split
    seen = Batches()
    trainer = Trainer(max_epochs=epochs, limit_val_batches=1, num_sanity_val_steps=0, logger=False,
                      enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                      use_distributed_sampler=False, callbacks=[seen])
    trainer.fit(parts.module, datamodule=parts.datamodule)
    return parts, seen


def test_training_batches_are_augmented_and_validation_batches_are_not(tmp_path):
    parts, seen = fit_batches(tmp_path, "data.augment=affine")
    dm = parts.datamodule
    # What the batches' indices index, normalised as every batch is on its device.
    x_train, x_val = dm.normalise(dm._split["train"][0]), dm.normalise(dm._split["val"][0])
    for _, x, index in seen.train:
        assert x.shape == x_train[index].shape
        assert not torch.allclose(x, x_train[index], atol=1e-3)  # every training batch is transformed
    assert seen.val
    for x, index in seen.val:
        assert torch.equal(x, x_val[index])  # validation sees the images as they are


def test_test_batches_are_never_augmented(tmp_path):
    parts, _ = fit_batches(tmp_path, "data.augment=affine", epochs=1)
    dm, seen = parts.datamodule, RecordTestBatches()
    trainer = Trainer(logger=False, enable_progress_bar=False, enable_model_summary=False,
                      use_distributed_sampler=False, callbacks=[seen])
    trainer.test(parts.module, datamodule=dm, verbose=False)
    x_test = dm.normalise(dm._split["test"][0])
    assert sum(len(i) for _, i in seen.batches) == len(x_test)
    for x, index in seen.batches:
        assert torch.equal(x, x_test[index])


class RecordTestBatches(Callback):
    def __init__(self):
        self.batches = []

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self.batches.append((batch[0].clone(), batch[2].clone()))


def test_the_same_seed_gives_the_same_augmented_batches_and_epochs_differ(tmp_path):
    _, first = fit_batches(tmp_path, "data.augment=affine", "seed=3")
    _, again = fit_batches(tmp_path, "data.augment=affine", "seed=3")
    _, other = fit_batches(tmp_path, "data.augment=affine", "seed=4")
    assert all(torch.equal(a[1], b[1]) and torch.equal(a[2], b[2]) for a, b in zip(first.train, again.train))
    assert not torch.allclose(first.train[0][1], other.train[0][1])
    # The same image in two epochs gets two different transforms.
    epoch0 = {int(i): x[k] for e, x, index in first.train if e == 0 for k, i in enumerate(index)}
    epoch1 = {int(i): x[k] for e, x, index in first.train if e == 1 for k, i in enumerate(index)}
    common = set(epoch0) & set(epoch1)
    assert common and all(not torch.allclose(epoch0[i], epoch1[i], atol=1e-3) for i in common)


def test_augment_none_leaves_training_batches_alone(tmp_path):
    parts, seen = fit_batches(tmp_path, "data.augment=none", epochs=1)
    x_train = parts.datamodule.normalise(parts.datamodule._split["train"][0])
    assert all(torch.equal(x, x_train[index]) for _, x, index in seen.train)


def test_normalised_blank_is_what_out_of_image_pixels_become(tmp_path):
    """The digits are normalised, so a blank pixel is not zero: the fill is the normalised blank, the
    darkest value of the pool, and augmented images never go below it."""
    parts, seen = fit_batches(tmp_path, "data.augment=shift", "data.shift=0.3", epochs=1)
    dm = parts.datamodule
    blank = float(dm._blank.flatten()[0])
    assert not math.isclose(blank, 0.0, abs_tol=1e-3)
    assert blank == pytest.approx(float(dm.normalise(dm._split["train"][0]).min()), abs=1e-5)
    assert min(float(x.min()) for _, x, _ in seen.train) >= blank - 1e-4
