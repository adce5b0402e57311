"""The package's imports run downward only, through the layers docs/architecture.md draws, and without
cycles between files or between packages; imports inside functions count as much as those at the top."""

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in (SRC / "archfuse").rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
            else:
                continue
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_graph_sees_the_package():
    graph = import_graph()
    assert "archfuse.run.job" in graph and "archfuse.validate" in graph["archfuse.run.job"]
    assert "archfuse.build" in graph["archfuse.validate"]


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle is None, " -> ".join(cycle)


def test_a_cycle_is_found():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


# The layers, from the ground up (docs/architecture.md). A package or top-level module may import only from
# its own layer and the layers below it.
LAYERS = (
    ("ground", {"errors", "files", "checks", "randomness", "cost", "config_dir", "process", "options", "instantiate",
                "context", "evaluation", "checkpoint", "tb_hparams", "ranks", "resolvers", "objective", "report",
                "summary", "sweep_dir", "host"}),
    ("models and data", {"models", "data"}),
    ("plug-ins", {"recipes", "ensembles"}),
    ("runners", {"module", "build", "trainer", "ddp", "callbacks", "scheduler", "validate", "run", "sweep",
                 "comparison", "exporting", "predicting"}),
    ("entry points", {"train", "eval", "compare", "command_line", "export", "predict"}),
)
PLUGINS = {"recipes", "ensembles"}
RUNNERS = {"run", "build", "module", "trainer", "ddp", "sweep", "train", "eval", "compare", "validate", "command_line",
           "exporting", "predicting", "export", "predict"}


def package_of(module: str) -> str | None:
    """``archfuse.recipes.prune`` -> ``recipes``; ``archfuse.build`` -> ``build``; None for archfuse itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    packages: dict[str, set[str]] = {}
    for name, targets in graph.items():
        if (source := package_of(name)) is None:
            continue
        packages.setdefault(source, set())
        packages[source].update(t for t in map(package_of, targets) if t is not None and t != source)
    return packages


def layer_of(package: str) -> int:
    for i, (_, members) in enumerate(LAYERS):
        if package in members:
            return i
    raise AssertionError(f"archfuse.{package} is in no layer: add it to LAYERS here and to docs/architecture.md")


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """``file -> module`` for every import into a higher layer."""
    found = []
    for name, targets in sorted(graph.items()):
        source = package_of(name)
        for target in sorted(targets):
            into = package_of(target)
            if source and into and layer_of(into) > layer_of(source):
                found.append(f"{name} ({LAYERS[layer_of(source)][0]}) -> {target} ({LAYERS[layer_of(into)][0]})")
    return found


def test_every_package_has_a_layer():
    for package in package_graph(import_graph()):
        layer_of(package)


def test_imports_run_downward_only():
    assert upward_imports(import_graph()) == []


def test_plug_ins_import_nothing_that_runs_them():
    graph = import_graph()
    reaching_up = [f"{name} -> {target}" for name, targets in graph.items() if package_of(name) in PLUGINS
                   for target in targets if package_of(target) in RUNNERS]
    assert reaching_up == []


def test_no_import_cycle_between_packages():
    cycle = find_cycle(package_graph(import_graph()))
    assert cycle is None, " -> ".join(cycle)


def test_an_upward_import_and_a_package_cycle_are_found():
    graph = {"archfuse.recipes.x": {"archfuse.run.fit"}, "archfuse.run.fit": {"archfuse.recipes.x"}}
    assert upward_imports(graph) == ["archfuse.recipes.x (plug-ins) -> archfuse.run.fit (runners)"]
    assert find_cycle(package_graph(graph)) == ["recipes", "run", "recipes"]
