"""The docs cannot rot: every relative link and #anchor in README.md and docs/*.md resolves, every
``archfuse-train`` command line they show composes, README.md shows the test command .ci/run runs, and it
stays a front door (at most 300 lines).

A command line is a line of a ```bash, ```console or plain ``` block that runs ``archfuse-train`` or
``python -m archfuse.train`` (also behind ``$ ``, ``srun`` or ``torchrun``), joined over trailing
backslashes. It is composed in-process as archfuse-train would compose it: ``hydra.sweeper.params.KEY``
as the sweep override ``KEY``, each sweep override (``a,b``, ``choice()``, ``interval()``) at its first
value, ``-m`` dropped (the sweep's base config), ``$HOME`` and ``$PWD`` a temporary folder. A command
the page shows failing (its next line is ``archfuse-train: error: ...``) may fail to compose, but then
with exactly that error.
"""

import functools
import re
import shlex
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
README_MAX_LINES = 300

# Command lines that cannot compose here (a substring of the line: why). Keep it short.
NEEDS_USER_FILES = {
    "hydra.searchpath=[file://": "the user's own config folder (my_conf/), which the page shows but does not create",
}

FENCE = re.compile(r"^\s*```\s*([\w-]*)")
COMMAND_BLOCKS = {"", "bash", "console", "sh", "shell"}
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
LINK = re.compile(r"!?\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
CODE_SPAN = re.compile(r"(`+).*?\1")
COMMAND = re.compile(r"^(?:\$\s+)?(?:archfuse-train(?:\s|$)|python3? -m archfuse\.train\b|srun\s|torchrun\s)")
ERROR = "archfuse-train: error: "


def blocks_and_prose(text: str) -> tuple[list[tuple[str, list[str]]], list[str]]:
    """The fenced code blocks (language, lines) and the lines outside them."""
    blocks, prose, current, language = [], [], None, ""
    for line in text.splitlines():
        fence = FENCE.match(line)
        if fence and current is None:
            current, language = [], fence.group(1).lower()
        elif line.strip().startswith("```") and current is not None:
            blocks.append((language, current))
            current = None
        elif current is not None:
            current.append(line)
        else:
            prose.append(line)
    return blocks, prose


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: markdown links reduced to their text, lowercase, punctuation other
    than - and _ dropped, spaces to -."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchors of a page's headings; a repeated slug gets -1, -2, ... as on GitHub."""
    seen: dict[str, int] = {}
    found = set()
    for line in blocks_and_prose(page.read_text())[1]:
        match = HEADING.match(line)
        if not match:
            continue
        base = slug(match.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def broken_links(page: Path) -> list[str]:
    broken = []
    for line in blocks_and_prose(page.read_text())[1]:
        for target in LINK.findall(CODE_SPAN.sub("", line)):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, https:, mailto:
                continue
            path, _, anchor = target.partition("#")
            file = (page.parent / path).resolve() if path else page
            if not file.exists():
                broken.append(f"{target}: {file.relative_to(REPO) if file.is_relative_to(REPO) else file} "
                              "does not exist")
            elif anchor and file.suffix == ".md" and anchor not in anchors(file):
                broken.append(f"{target}: no heading of {file.name} has the anchor #{anchor}")
    return broken


def command_lines(page: Path) -> list[tuple[str, str | None]]:
    """(command line, the error the page shows it printing or None) of every command in the page's blocks."""
    found = []
    for language, lines in blocks_and_prose(page.read_text())[0]:
        if language not in COMMAND_BLOCKS:
            continue
        joined: list[str] = []
        for line in lines:
            if joined and joined[-1].endswith("\\"):
                joined[-1] = joined[-1][:-1] + " " + line.strip()
            else:
                joined.append(line.strip())
        for i, line in enumerate(joined):
            if COMMAND.match(line):
                after = next((ln for ln in joined[i + 1:] if ln), "")
                found.append((line.removeprefix("$").strip(), after[len(ERROR):] if after.startswith(ERROR) else None))
    return found


def train_arguments(line: str, home: Path) -> list[str]:
    """The overrides the command line gives archfuse-train, shell variables $HOME and $PWD substituted."""
    for name in ("HOME", "PWD"):
        line = line.replace("${" + name + "}", str(home)).replace("$" + name, str(home))
    words = shlex.split(line, comments=True)
    for i, word in enumerate(words):
        if word == "archfuse-train":
            words = words[i + 1:]
            break
        if word == "archfuse.train" and i and words[i - 1] == "-m":
            words = words[i + 1:]
            break
    arguments, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word in ("--cfg", "-c", "--package", "-p"):
            skip = True  # and its value: job, hydra, all
        elif not word.startswith("-"):
            arguments.append(word)
    return arguments


@functools.cache
def compose_error(arguments: tuple[str, ...]) -> str | None:
    """Why these overrides do not compose (archfuse's own message where it has one), or None."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser

    import archfuse.train  # noqa: F401  (registers the resolvers of the run directory)
    from archfuse.command_line import _first_value, check_command_line, expand_home
    from archfuse.config_dir import config_dir
    from archfuse.sweep.multirun_overrides import check_overrides, params_on_command_line

    argv = params_on_command_line(expand_home(list(arguments)))  # as archfuse-train's main() does
    bad = check_overrides(["-m", *argv])
    if bad:
        return bad
    parsed = OverridesParser.create().parse_overrides(argv)
    groups = [o for o in parsed if o.is_sweep_override() and Path(config_dir(), o.get_key_element()).is_dir()]
    if groups:  # a sweep over the options of a config group: each option must exist, not only the first
        bad = check_command_line(argv, config_dir(), "train")
        if bad:
            return bad
    overrides = [_first_value(o) if o.is_sweep_override() else o.input_line for o in parsed]
    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
            compose("train", overrides=overrides, return_hydra_config=True)
    except Exception as err:
        return check_command_line(argv, config_dir(), "train") or f"{type(err).__name__}: {err}"
    finally:
        GlobalHydra.instance().clear()
    return None


def page_id(page: Path) -> str:
    return str(page.relative_to(REPO))


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_relative_link_and_anchor_resolves(page):
    broken = broken_links(page)
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_archfuse_train_command_line_composes(page, tmp_path):
    failures = []
    for line, shown_error in command_lines(page):
        if any(part in line for part in NEEDS_USER_FILES):
            continue
        try:
            error = compose_error(tuple(train_arguments(line, tmp_path)))
        except Exception as err:  # a line the shell or Hydra's parser cannot read
            error = f"{type(err).__name__}: {err}"
        if error is not None and error != shown_error:
            expected = f"\n  the page shows: {shown_error}" if shown_error else ""
            failures.append(f"{line}\n  -> {error}{expected}")
    assert not failures, "\n".join(failures)


def test_the_pages_show_command_lines():
    """The extraction finds what it should check (a parser that finds nothing would pass everything)."""
    readme = [line for line, _ in command_lines(REPO / "README.md")]
    assert "archfuse-train model=convnet model.width=64 model.depth=3 model.activation=tanh" in readme
    distributed = [line for line, _ in command_lines(REPO / "docs" / "distributed.md")]
    assert any(line.startswith("torchrun") and line.endswith("output_dir=/shared/outputs") for line in distributed)
    assert train_arguments("torchrun --nproc-per-node 2 -m archfuse.train trainer=ddp_cpu # two ranks", REPO) == [
        "trainer=ddp_cpu"]
    assert train_arguments("archfuse-train -m data.root=$HOME/data --cfg job", Path("/h")) == ["data.root=/h/data"]


def test_slugs_follow_githubs_rules(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# Comparing runs: archfuse-compare\n## seed000_digits: 5 seeds, mean ± std\n## A\n## A\n"
                    "```\n# not a heading\n```\n")
    assert anchors(page) == {"comparing-runs-archfuse-compare", "seed000_digits-5-seeds-mean--std", "a", "a-1"}


def test_the_readme_shows_the_test_command_ci_runs():
    ci = [line for line in (REPO / ".ci" / "run").read_text().splitlines() if line.endswith("python -m pytest")]
    assert ci and ci[0] in (REPO / "README.md").read_text().splitlines()


def test_the_readme_is_a_front_door():
    lines = len((REPO / "README.md").read_text().splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move reference text to a page under docs/"
