"""archfuse.checks: what each check accepts, and the messages it writes."""

import pytest

from archfuse.checks import (check_choice, check_count, check_file, check_fraction, check_given, check_number,
                             check_positive, check_writable, is_int, is_number, must_be)
from archfuse.errors import ConfigError


def message(check, *args, **kwargs) -> str:
    with pytest.raises(ConfigError) as err:
        check(*args, **kwargs)
    return str(err.value)


def test_counts():
    assert check_count("k", 0) == 0 and check_count("k", 3, 3) == 3 and check_count("k", None, none_ok=True) is None
    assert message(check_count, "k", -1) == "k: must be an integer >= 0, got -1"
    assert message(check_count, "k", True) == "k: must be an integer >= 0, got True"
    assert message(check_count, "k", 2.0, 1) == "k: must be an integer >= 1, got 2.0"
    assert message(check_count, "k", None, 2) == "k: must be an integer >= 2, got None"
    assert message(check_positive, "k", 0) == "k: must be a positive integer, got 0"
    assert message(check_positive, "k", "3", what="a positive integer or null", none_ok=True) == \
        "k: must be a positive integer or null, got '3'"


def test_numbers():
    assert check_number("k", 0.5, 0, 1) == 0.5 and check_number("k", 1, 0, 1) == 1
    assert message(check_number, "k", 1.0, 0, 1, high_open=True) == "k: must be a number in [0, 1), got 1.0"
    assert message(check_number, "k", 0, 0, 1, low_open=True) == "k: must be a number in (0, 1], got 0"
    assert message(check_number, "k", -1, 0) == "k: must be a number >= 0, got -1"
    assert message(check_number, "k", 0.0, 0, low_open=True) == "k: must be a number > 0, got 0.0"
    assert message(check_number, "k", 2, None, 1) == "k: must be a number <= 1, got 2"
    assert message(check_number, "k", False) == "k: must be a number, got False"
    assert message(check_number, "k", 2, 0, 1, what="a fraction between 0 and 1") == \
        "k: must be a fraction between 0 and 1, got 2"
    assert check_number("k", None, 0, none_ok=True) is None
    assert message(check_fraction, "k", 1) == "k: must be a number in [0, 1), got 1"


def test_predicates_and_must_be():
    assert is_int(3) and not is_int(True) and not is_int(3.0) and is_int(3, 3) and not is_int(2, 3)
    assert is_number(0.5, 0, 1) and not is_number(True) and not is_number("1")
    assert not is_number(1, 0, 1, high_open=True) and is_number(1, 0, 1)
    assert str(must_be("k", "later or earlier", "first")) == "k: must be later or earlier, got 'first'"


def test_choices():
    assert check_choice("k", "a", ("a", "b")) == "a" and check_choice("k", "x", {"x": 1}) == "x"
    assert message(check_choice, "k", "c", ("a", "b")) == "k: unknown value 'c'; choose one of a, b"
    assert message(check_choice, "k", ["a"], {"a": 1, "b": 2}, what="activation") == \
        "k: unknown activation ['a']; choose one of a, b"


def test_files(tmp_path):
    (tmp_path / "a.ckpt").write_text("x")
    assert check_file("k", tmp_path / "a.ckpt", "hint") == tmp_path / "a.ckpt"
    assert message(check_file, "k", tmp_path / "b.ckpt", "give a file") == \
        f"k: {tmp_path / 'b.ckpt'} does not exist; give a file"


def test_given_values(tmp_path):
    assert check_given("k", "x.ckpt", "cmd k=PATH") == "x.ckpt"
    assert message(check_given, "k", "???", "cmd k=PATH") == "k: is required: cmd k=PATH"
    assert message(check_given, "k", None, "cmd k=PATH") == "k: is required: cmd k=PATH"


def test_writable_paths(tmp_path):
    assert check_writable("out", tmp_path / "new" / "deeper" / "f.csv", "hint") == tmp_path / "new" / "deeper" / "f.csv"
    assert not (tmp_path / "new").exists() and list(tmp_path.iterdir()) == []  # the probe leaves nothing
    assert message(check_writable, "out", tmp_path, "give a file") == f"out: {tmp_path} is a directory; give a file"
    (tmp_path / "a_file").write_text("")
    assert message(check_writable, "out", tmp_path / "a_file" / "f.csv", "hint") == (
        f"out: cannot write {tmp_path / 'a_file' / 'f.csv'}: {tmp_path / 'a_file'} is a file, not a directory")
