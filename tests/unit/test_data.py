"""The data modules on scikit-learn's real digits: split sizes and shares, normalisation, subsets,
k-fold, the batch sampler's order and DDP sharding, and the ConfigErrors for bad settings."""

import math

import pytest
import torch

from archfuse.data.batches import IndexBatchSampler
from archfuse.data.digits import DigitsDataModule
from archfuse.errors import ConfigError
from conftest import data_module

N_DIGITS = 1797


def digits(**kwargs) -> DigitsDataModule:
    dm = data_module("digits", **kwargs)  # conf/data/digits.yaml's values, with kwargs over them
    dm.setup()
    return dm


def split_labels(dm: DigitsDataModule, split: str) -> torch.Tensor:
    return dm._labels[split][dm._split[split][1]]


@pytest.fixture(scope="module")
def dm() -> DigitsDataModule:
    return digits(seed=0)


# -- splits -----------------------------------------------------------------------------------

def test_split_sizes_are_shares_of_all_1797_images(dm):
    # sklearn rounds the held-out part up: test = ceil(0.2 * 1797); val_fraction is of the whole set.
    test = math.ceil(0.2 * N_DIGITS)
    val = math.ceil(0.15 / 0.8 * (N_DIGITS - test))
    assert (test, val) == (360, 270)
    assert dm.split_size("test") == test
    assert dm.split_size("val") == val
    assert dm.split_size("train") == N_DIGITS - test - val == 1167
    assert len(dm.pool_labels()) == N_DIGITS - test
    # train and val partition the pool.
    train_idx, val_idx = dm._split["train"][1], dm._split["val"][1]
    assert set(train_idx.tolist()).isdisjoint(val_idx.tolist())
    assert sorted(train_idx.tolist() + val_idx.tolist()) == list(range(N_DIGITS - test))


def test_splits_are_stratified(dm):
    everything = torch.cat([split_labels(dm, s) for s in ("train", "val", "test")])
    total = torch.bincount(everything, minlength=10)
    assert total.sum() == N_DIGITS
    for split in ("train", "val", "test"):
        counts = torch.bincount(split_labels(dm, split), minlength=10)
        share = dm.split_size(split) / N_DIGITS
        # Each class gets its share of the split, up to rounding across the two nested splits.
        assert (counts - share * total).abs().max() <= 2, (split, counts, share * total)


def test_split_is_deterministic_for_a_seed_and_changes_with_it(dm):
    same, other = digits(seed=0), digits(seed=1)
    for split in ("train", "val"):
        assert torch.equal(dm._split[split][1], same._split[split][1])
    assert torch.equal(dm._split["test"][0], same._split["test"][0])
    assert not torch.equal(dm._split["val"][1], other._split["val"][1])
    assert not torch.equal(dm._split["test"][0], other._split["test"][0])
    assert other.split_size("val") == dm.split_size("val")  # only the members change


# -- images -----------------------------------------------------------------------------------

def test_pool_is_normalised_and_test_uses_pool_statistics(dm):
    # Held as stored; normalised batch by batch with the pool's statistics.
    x_pool, x_test = dm.normalise(dm._split["train"][0]), dm.normalise(dm._split["test"][0])
    assert x_pool.shape == (N_DIGITS - 360, 1, 28, 28)
    assert x_test.shape == (360, 1, 28, 28)
    assert abs(x_pool.mean().item()) < 1e-4
    assert abs(x_pool.std().item() - 1.0) < 1e-4
    # The test split is not normalised on its own statistics (it would then be exactly 0/1 too).
    assert abs(x_test.mean().item()) > 1e-3


def test_image_size_8_keeps_the_original_pixels():
    dm = digits(image_size=8)
    assert dm.input_shape == (1, 8, 8)
    x = dm._split["train"][0]
    assert x.shape == (N_DIGITS - 360, 1, 8, 8)
    # The original digits have 17 grey levels (0..16); normalising is affine, so 17 values remain.
    assert len(torch.unique(x)) == 17


def test_loaders_yield_whole_batches_in_split_order(dm):
    batches = list(dm.test_dataloader())
    assert [len(y) for _, y in batches] == [64] * 5 + [360 - 5 * 64]
    x, y = batches[0]
    assert x.shape == (64, 1, 28, 28) and y.dtype == torch.long
    assert torch.equal(torch.cat([y for _, y in batches]), dm._labels["test"])
    train = list(dm.train_dataloader())
    assert sum(len(y) for _, y in train) == 1167


def test_a_process_loads_the_same_data_once_and_other_data_anew(monkeypatch):
    """The jobs of a multirun read and normalise the same files once; a job on other data loads its own."""
    import archfuse.data.datamodule as datamodule_module
    import archfuse.data.digits as digits_module

    calls = []
    real = digits_module.load_digits
    monkeypatch.setattr(digits_module, "load_digits", lambda: calls.append(1) or real())
    monkeypatch.setattr(datamodule_module, "_LOADED", {})
    first = digits(seed=3)
    second = digits(seed=3, batch_size=32, augment="none")  # loaders and augmentation are not the arrays
    assert len(calls) == 1 and second._split["test"][0] is first._split["test"][0]
    assert torch.equal(second._split["val"][1], first._split["val"][1])
    other = digits(seed=4)  # another test split: loaded again
    assert len(calls) == 2 and not torch.equal(other._split["test"][0], first._split["test"][0])
    again = digits(seed=3)  # one entry is kept: the earlier data is loaded anew, with the same result
    assert len(calls) == 3 and torch.equal(again._split["test"][0], first._split["test"][0])
    assert torch.equal(again._blank, first._blank)


# -- train_subset -----------------------------------------------------------------------------

def test_train_subset_takes_exactly_n_training_images(dm):
    sub = digits(train_subset=100)
    assert sub.split_size("train") == 100
    assert set(sub._split["train"][1].tolist()) <= set(dm._split["train"][1].tolist())
    assert torch.equal(sub._split["val"][1], dm._split["val"][1])  # val is not shrunk
    assert sub.split_size("test") == 360


def test_train_subset_larger_than_the_training_split_is_refused():
    with pytest.raises(ConfigError, match=r"^data\.train_subset: 1168 exceeds the 1167 training images"):
        digits(train_subset=1168)
    assert digits(train_subset=1167).split_size("train") == 1167


# -- k-fold -----------------------------------------------------------------------------------

def test_folds_partition_the_pool_and_leave_test_alone(dm):
    folds, vals = 5, []
    for k in range(folds):
        fdm = data_module("digits", seed=0)
        fdm.fold = (k, folds)
        fdm.setup()
        train, val = fdm._split["train"][1].tolist(), fdm._split["val"][1].tolist()
        assert set(train).isdisjoint(val)
        assert sorted(train + val) == list(range(N_DIGITS - 360))
        assert torch.equal(fdm._split["test"][0], dm._split["test"][0])
        assert torch.equal(fdm._labels["test"], dm._labels["test"])
        vals.append(set(val))
    assert sum(len(v) for v in vals) == N_DIGITS - 360
    assert set().union(*vals) == set(range(N_DIGITS - 360))
    assert all(len(v) in (287, 288) for v in vals)  # 1437 / 5, stratified


# -- IndexBatchSampler ------------------------------------------------------------------------

def epoch_order(sampler: IndexBatchSampler, epoch: int) -> list[int]:
    sampler.set_epoch(epoch)
    return torch.cat(list(sampler)).tolist()


def test_train_order_depends_only_on_seed_and_epoch():
    indices = torch.arange(100, 150)
    resumed = IndexBatchSampler(indices, batch_size=8, shuffle=True, seed=7)
    walked = IndexBatchSampler(indices, batch_size=8, shuffle=True, seed=7)
    for epoch in range(3):  # an uninterrupted run passes through earlier epochs first
        epoch_order(walked, epoch)
    assert epoch_order(walked, 3) == epoch_order(resumed, 3)
    assert epoch_order(resumed, 3) != epoch_order(resumed, 4)
    other_seed = IndexBatchSampler(indices, batch_size=8, shuffle=True, seed=8)
    assert epoch_order(other_seed, 3) != epoch_order(resumed, 3)
    # Each epoch is a permutation of the given indices, cut into batches of 8 (last one 2).
    assert sorted(epoch_order(resumed, 5)) == indices.tolist()
    assert [len(b) for b in resumed] == [8] * 6 + [2]
    assert len(resumed) == 7


def test_eval_shards_are_disjoint_and_cover_every_index_once():
    indices = torch.arange(11) * 3  # odd length: the ranks get 6 and 5
    shards = [IndexBatchSampler(indices, batch_size=4, shuffle=False, rank=r, world_size=2) for r in range(2)]
    seen = [torch.cat(list(s)).tolist() for s in shards]
    assert [len(s) for s in seen] == [6, 5]
    assert set(seen[0]).isdisjoint(seen[1])
    assert sorted(seen[0] + seen[1]) == indices.tolist()
    assert [len(s) for s in shards] == [len(list(s)) for s in shards] == [2, 2]


def test_train_shards_have_equal_lengths_and_cover_every_index():
    indices = torch.arange(11)
    shards = [IndexBatchSampler(indices, batch_size=4, shuffle=True, seed=3, rank=r, world_size=2)
              for r in range(2)]
    seen = [epoch_order(s, 2) for s in shards]
    assert [len(s) for s in seen] == [6, 6]  # padded by one repeated index
    assert set(seen[0] + seen[1]) == set(range(11))
    assert [len(s) for s in shards] == [len(list(s)) for s in shards] == [2, 2]


# -- ConfigErrors -----------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, key, text", [
    ({"batch_size": 0}, "data.batch_size", "must be a positive integer, got 0"),
    ({"batch_size": -8}, "data.batch_size", "got -8"),
    ({"batch_size": 1.5}, "data.batch_size", "got 1.5"),
    ({"num_workers": -1}, "data.num_workers", "must be an integer >= 0"),
    ({"val_fraction": 0.0}, "data.val_fraction", "must be between 0 and 1 (exclusive), got 0.0"),
    ({"val_fraction": 1.0}, "data.val_fraction", "got 1.0"),
    ({"val_fraction": -0.1}, "data.val_fraction", "got -0.1"),
    ({"test_fraction": 1.2}, "data.test_fraction", "must be between 0 and 1 (exclusive), got 1.2"),
    ({"val_fraction": 0.5, "test_fraction": 0.5}, "data.val_fraction",
     "val_fraction (0.5) + test_fraction (0.5) must be below 1"),
    ({"val_fraction": 0.7, "test_fraction": 0.4}, "data.val_fraction", "must be below 1"),
    ({"train_subset": 0}, "data.train_subset", "must be a positive integer or null, got 0"),
    ({"image_size": 4}, "data.image_size", "must be an integer >= 8, got 4"),
])
def test_bad_settings_name_their_key(kwargs, key, text):
    with pytest.raises(ConfigError) as err:
        data_module("digits", **kwargs)
    assert err.value.key == key
    assert str(err.value).startswith(f"{key}: ")
    assert text in str(err.value)
