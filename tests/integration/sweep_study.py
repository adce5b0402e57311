"""A sweep's study and files as the tests read them back: the study from its SQLite file, trials.csv."""

import csv
from pathlib import Path

import optuna


def sweep_dir(cwd: Path) -> Path:
    (found,) = (cwd / "outputs" / "sweeps").iterdir()
    return found


def load(directory: Path) -> optuna.Study:
    return optuna.load_study(study_name=directory.name, storage=f"sqlite:///{directory / 'study.db'}")


def rows(directory: Path) -> list[dict]:
    with open(directory / "trials.csv") as f:
        return list(csv.DictReader(f))
