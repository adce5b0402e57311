"""A multirun command line before Hydra composes it (light: no optuna, no torch): the sweeper's
``hydra.sweeper.params.KEY=EXPR`` turned into sweep overrides, and the first malformed override found."""

PREFIX = "hydra.sweeper.params."
OPEN = ("hydra.sweeper.sampler_args.", "hydra.sweeper.pruner_args.", "hydra.sweeper.constraints.")


def params_on_command_line(argv: list[str]) -> list[str]:
    """``hydra.sweeper.params.KEY=EXPR`` on the command line is the sweep override ``KEY=EXPR``: Hydra
    refuses sweep expressions on its own keys, and the sweeper merges both into one search space.
    The sweeper's open mappings (sampler_args, pruner_args, constraints) take new keys without ``+``."""
    out = []
    for arg in argv:
        bare = arg.lstrip("+")
        if bare.startswith(PREFIX) and "=" in bare:
            arg = bare[len(PREFIX):]
        elif bare.startswith(OPEN) and "=" in bare or bare.split("=")[0] + "." in OPEN:
            arg = "++" + bare
        out.append(arg)
    return out


def check_overrides(argv: list[str]) -> str | None:
    """The first malformed override of a multirun command line as ``KEY: why`` (Hydra would stop with a
    stack-trace hint and exit code 1), or None."""
    if not {"-m", "--multirun"} & set(argv):
        return None
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parser = OverridesParser.create()
    for arg in argv:
        if arg.startswith("-") or "=" not in arg:
            continue
        try:
            parser.parse_overrides([arg])
        except Exception as err:
            lines = [ln for ln in str(err).splitlines() if ln.strip() and not ln.startswith("See https")]
            return f"{arg.split('=')[0].lstrip('+~')}: malformed override {arg!r}: {lines[-1] if lines else err}"
    return None
