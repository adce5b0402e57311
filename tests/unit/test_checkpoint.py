"""read_checkpoint: weights_only loading, and one clear error per kind of bad file."""

import pytest
import torch

from archfuse.checkpoint import read_checkpoint
from archfuse.errors import ConfigError


def test_reads_an_archfuse_checkpoint(tmp_path):
    path = tmp_path / "ok.ckpt"
    torch.save({"state_dict": {"w": torch.ones(2)}, "hyper_parameters": {"config": {"seed": 1}}}, path)
    assert read_checkpoint(path, "ckpt")["hyper_parameters"]["config"] == {"seed": 1}


@pytest.mark.parametrize("content, message", [
    (b"", "is not a readable checkpoint"),
    (b"plain text, not a checkpoint", "is not a readable checkpoint"),
])
def test_unreadable_files(tmp_path, content, message):
    path = tmp_path / "bad.ckpt"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=f"ckpt_path: {path} {message}"):
        read_checkpoint(path, "ckpt_path")


def test_truncated_file(tmp_path):
    path = tmp_path / "cut.ckpt"
    torch.save({"state_dict": {"w": torch.randn(1000)}, "hyper_parameters": {"config": {}}}, path)
    path.write_bytes(path.read_bytes()[:2000])
    with pytest.raises(ConfigError, match=r"is not a readable checkpoint \(truncated"):
        read_checkpoint(path, "ckpt")


def test_foreign_checkpoint_and_missing_file(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"model": torch.zeros(1)}, path)
    with pytest.raises(ConfigError, match="is not an archfuse checkpoint"):
        read_checkpoint(path, "ckpt")
    with pytest.raises(ConfigError, match="does not exist"):
        read_checkpoint(tmp_path / "nope.ckpt", "ckpt")


def test_pickled_objects_are_refused(tmp_path):
    """weights_only: a checkpoint that would run code on load is not loaded."""
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {"config": {}}, "obj": ConfigError("k", "m")}, path)
    with pytest.raises(ConfigError, match="is not a readable checkpoint"):
        read_checkpoint(path, "ckpt")
