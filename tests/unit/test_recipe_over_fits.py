"""A recipe's reports over repeated fits (seeds=N, cv.folds=K): means and stds of every step's figures."""

import statistics

import pytest

from archfuse.run.recipe_over_fits import recipe_over_fits


def _step(test_before: float, test_after: float, sparsity: float) -> dict:
    return {"name": "prune", "summary": "global L1", "sparsity": sparsity,
            "before": {"test/acc": test_before, "params": 13750, "latency_batch_size": 1},
            "after": {"test/acc": test_after, "params": 13750, "latency_batch_size": 1}}


def test_one_fit_is_reported_unchanged():
    reports = [[_step(0.98, 0.97, 0.9)]]
    assert recipe_over_fits(reports) == reports[0]
    assert recipe_over_fits([[]]) == []


def test_means_and_stds_over_three_fits():
    fits = [[_step(0.98, 0.97, 0.90)], [_step(0.99, 0.96, 0.90)], [_step(0.97, 0.95, 0.90)]]
    (step,) = recipe_over_fits(fits)
    assert step["name"] == "prune" and step["summary"] == "global L1" and step["fits"] == 3
    assert step["before"]["test/acc"] == pytest.approx(0.98)
    assert step["after"]["test/acc"] == pytest.approx(0.96)
    assert step["before_std"]["test/acc"] == pytest.approx(0.01)
    assert step["after_std"]["test/acc"] == pytest.approx(0.01)
    assert step["after"]["params"] == 13750 and isinstance(step["after"]["params"], int)
    assert step["sparsity"] == pytest.approx(0.9) and step["sparsity_std"] == pytest.approx(0.0)
    assert [r["after"]["test/acc"] for r in step["runs"]] == [0.97, 0.96, 0.95]


def test_chain_steps_stay_in_order():
    a = [{"name": "distill", "before": {"test/acc": 0.9}, "after": {"test/acc": 0.9}},
         {"name": "quantize", "before": {"test/acc": 0.9}, "after": {"test/acc": 0.8}}]
    steps = recipe_over_fits([a, a])
    assert [s["name"] for s in steps] == ["distill", "quantize"]
    assert steps[1]["after"]["test/acc"] == pytest.approx(0.8)


def test_over_folds_the_std_is_the_population_std():
    """As the run's cv metrics (scikit-learn's cross_val_score(...).std()): n, not n - 1."""
    fits = [[_step(0.98, 0.97, 0.90)], [_step(0.99, 0.96, 0.90)], [_step(0.97, 0.95, 0.90)]]
    (step,) = recipe_over_fits(fits, sample=False)
    assert step["after_std"]["test/acc"] == pytest.approx(statistics.pstdev([0.97, 0.96, 0.95]))
    assert step["after_std"]["test/acc"] < 0.0099  # the sample std would be 0.01
