"""The sweep grammar (Hydra's choice/range/interval/int/tag) as Optuna distributions, the overrides a
trial gets back, the sweeper's settings, samplers and pruners, and the command-line rewrites."""

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from archfuse.errors import ConfigError
from archfuse.sweep import algorithms
from archfuse.sweep.multirun_overrides import check_overrides, params_on_command_line
from archfuse.sweep.settings import read_settings
from archfuse.sweep.space import flatten_params, format_value, grid_of, parse_space


def dims(params=None, arguments=()):
    return parse_space(params or {}, list(arguments))[0].dims


@pytest.mark.parametrize("expr, expected", [
    ("choice(8, 16, 32)", CategoricalDistribution([8, 16, 32])),
    ("8,16", CategoricalDistribution([8, 16])),
    ("choice(relu, tanh)", CategoricalDistribution(["relu", "tanh"])),
    ("range(1, 5)", IntDistribution(1, 4)),
    ("range(8, 65, 8)", IntDistribution(8, 64, step=8)),
    ("range(0.1, 0.5, 0.1)", FloatDistribution(0.1, 0.4, step=0.1)),
    ("interval(0.0, 0.5)", FloatDistribution(0.0, 0.5)),
    ("int(interval(1, 10))", IntDistribution(1, 10)),
    ("tag(log, interval(1e-4, 1e-2))", FloatDistribution(1e-4, 1e-2, log=True)),
    ("tag(log, int(interval(8, 256)))", IntDistribution(8, 256, log=True)),
    ("shuffle(range(1, 4))", CategoricalDistribution([1, 2, 3])),
])
def test_grammar_to_distribution(expr, expected):
    got = dims({"k": expr})["k"]
    assert type(got) is type(expected)
    assert got == expected or (isinstance(got, FloatDistribution) and got.low == pytest.approx(expected.low)
                               and got.high == pytest.approx(expected.high) and got.step == expected.step)


def test_lists_are_choices_kept_as_override_text():
    space, _ = parse_space({"model.hidden_sizes": "choice([64],[128,64])"}, [])
    assert space.dims["model.hidden_sizes"] == CategoricalDistribution(["[64]", "[128,64]"])
    assert space.overrides({"model.hidden_sizes": "[128,64]"}) == ["model.hidden_sizes=[128,64]"]
    assert dims({"a": [1, 2]})["a"] == CategoricalDistribution([1, 2])  # a YAML list is a choice


def test_nested_params_and_command_line_merge():
    """``hydra.sweeper.params.optimizer.lr=...`` nests; the command line's sweeps join (and win), its plain
    values fix a key for every trial and are passed on."""
    assert flatten_params({"optimizer": {"lr": "x"}, "model.width": "y"}) == {"optimizer.lr": "x", "model.width": "y"}
    space, rest = parse_space({"model.width": "choice(8,16)", "model.depth": "range(1,3)", "seed": 3},
                              ["search=grid", "model.width=choice(4,64)", "model.depth=2", "cv.folds=5"])
    assert space.dims == {"model.width": CategoricalDistribution([4, 64])}
    assert space.fixed == {"seed": "3"}
    assert rest == ["search=grid", "model.depth=2", "cv.folds=5"]
    assert space.overrides({"model.width": 64}) == ["seed=3", "model.width=64"]


@pytest.mark.parametrize("value, text", [(3, "3"), (1e-3, "0.001"), (True, "true"), (None, "null"),
                                          ("relu", "relu"), ("a b", "'a b'"), ([1, 2], "[1,2]")])
def test_values_format_as_overrides(value, text):
    assert format_value(value) == text


@pytest.mark.parametrize("params, message", [
    ({"model.width": "range(1,"}, "hydra.sweeper.params.model.width: malformed sweep 'range(1,'"),
    ({"optimizer.lr": "interval(0.1, 0.01)"}, "hydra.sweeper.params.optimizer.lr: interval(0.1, 0.01) is empty"),
    ({"optimizer.lr": "tag(log, interval(0, 1))"}, "needs a low bound above 0"),
    ({"model.depth": "range(5, 1)"}, "hydra.sweeper.params.model.depth: range(5, 1, 1) is empty"),
    ({"a": "choice(1, 1)"}, "choice() lists a value twice"),
    ("width", "hydra.sweeper.params: must map config keys to sweep expressions"),
])
def test_malformed_spaces_name_the_key(params, message):
    with pytest.raises(ConfigError, match=None) as err:
        parse_space(params, [])
    assert message in str(err.value)


def test_grid_cells():
    space, _ = parse_space({"w": "choice(8,16)", "d": "range(1,4)", "lr": "range(0.1, 0.3, 0.1)"}, [])
    assert grid_of(space) == {"w": [8, 16], "d": [1, 2, 3], "lr": [0.1, 0.2]}
    with pytest.raises(ConfigError, match="hydra.sweeper.params.lr: the grid sampler needs a finite set"):
        grid_of(parse_space({"lr": "interval(0.1, 1.0)"}, [])[0])


def test_settings_and_algorithms_refuse_bad_values():
    with pytest.raises(ConfigError, match="hydra.sweeper.n_trials: must be an integer >= 1, got 0"):
        read_settings({"n_trials": 0})
    with pytest.raises(ConfigError, match="hydra.sweeper.max_failure_rate: must be a fraction"):
        read_settings({"max_failure_rate": 2})
    with pytest.raises(ConfigError, match="hydra.sweeper.scalarize: must be a weight >= 0"):
        read_settings({"scalarize": -1})
    with pytest.raises(ConfigError, match="hydra.sweeper.trials: unknown key"):
        read_settings({"trials": 3})
    with pytest.raises(ConfigError, match="hydra.sweeper.sampler: unknown sampler 'bayes'; choose one of: tpe, random"):
        algorithms.check_sampler("bayes", 1)
    with pytest.raises(ConfigError, match="hydra.sweeper.pruner: unknown pruner 'early'"):
        algorithms.check_pruner("early", 1, ["val/acc_best"])
    with pytest.raises(ConfigError, match="hydra.sweeper.pruner: Optuna cannot prune a study with several objectives"):
        algorithms.check_pruner("median", 2, ["val/acc_best", "cost/params"])
    with pytest.raises(ConfigError, match="hydra.sweeper.sampler: cmaes optimises one objective"):
        algorithms.check_sampler("cmaes", 2)
    with pytest.raises(ConfigError, match="hydra.sweeper.pruner_args.n_startup: unknown key"):
        algorithms.build_pruner("median", {"n_startup": 1})
    assert algorithms.check_pruner(None, 2, ["a", "b"]) == "none"


def test_the_percentile_pruner_keeps_the_best_quarter_by_default():
    """After 5 finished trials, at an epoch past the warm-up, a trial below the best quarter is pruned
    (the median pruner would keep it: it is above the median); pruner_args change the cut."""
    import optuna

    def pruned(name, args, value):
        study = optuna.create_study(direction="maximize", pruner=algorithms.build_pruner(name, args))
        for v in (0.1, 0.3, 0.5, 0.7, 0.9):
            trial = study.ask()
            trial.report(v, 1)
            study.tell(trial, v)
        trial = study.ask()
        trial.report(value, 1)
        return trial.should_prune()

    assert pruned("percentile", {}, 0.6) and not pruned("percentile", {}, 0.8)
    assert not pruned("median", {}, 0.6) and pruned("median", {}, 0.4)
    assert not pruned("percentile", {"percentile": 50.0}, 0.6)


@pytest.mark.parametrize("name", ["tpe", "random", "nsga2", "gp"])
def test_samplers_are_seeded(name):
    import optuna

    def draws():
        study = optuna.create_study(sampler=algorithms.build_sampler(name, 7, {}))
        space = {"x": FloatDistribution(0, 1), "c": CategoricalDistribution(["a", "b", "c"])}
        out = []
        for _ in range(3):
            trial = study.ask(space)
            out.append(dict(trial.params))
            study.tell(trial, trial.params["x"])
        return out

    assert draws() == draws()


def test_command_line_rewrites_and_checks():
    argv = ["-m", "hydra.sweeper.params.optimizer.lr=tag(log, interval(1e-4, 1e-2))",
            "+hydra.sweeper.params.model.width=choice(8,16)", "hydra.sweeper.pruner_args.n_startup_trials=1",
            "model=convnet", "hydra.sweeper.constraints={cost/params: 5}"]
    assert params_on_command_line(argv) == ["-m", "optimizer.lr=tag(log, interval(1e-4, 1e-2))",
                                            "model.width=choice(8,16)",
                                            "++hydra.sweeper.pruner_args.n_startup_trials=1", "model=convnet",
                                            "++hydra.sweeper.constraints={cost/params: 5}"]
    assert check_overrides(["-m", "model.width=range(1,"]).startswith("model.width: malformed override")
    assert check_overrides(["model.width=range(1,"]) is None  # a single run: Hydra's own message
