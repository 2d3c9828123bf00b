"""The house's shape: no import circles, no private names imported across modules, `lib/` only the
shared modules, and the CLI a leaf.

Imports inside functions count too: a circle broken by a function-level import is still a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("dagster_project", "ingestion")
# dagster_project/lib/ holds only what every domain shares; a domain's code lives in its own package.
SHARED = ("dagster_project.lib", "dagster_project.lib.bulk_write", "dagster_project.lib.database",
          "dagster_project.lib.errors", "dagster_project.lib.money")
CLI = "dagster_project.cli"


def _modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts)
            out[name.removesuffix(".__init__")] = path
    return out


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def _imports(modules: dict[str, Path]) -> dict[str, set[tuple[str, str | None]]]:
    """Each module's imports of our own modules, with the imported name (None for ``import x``)."""
    out: dict[str, set[tuple[str, str | None]]] = {m: set() for m in modules}
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                out[module] |= {(t, None) for a in node.names if (t := _resolve(a.name, modules))}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    target = _resolve(f"{node.module}.{alias.name}", modules) or _resolve(node.module, modules)
                    if target:
                        name = None if target == f"{node.module}.{alias.name}" else alias.name
                        out[module].add((target, name))
    return out


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_import_graph_has_no_circle():
    modules = _modules()
    edges = {m: {t for t, _ in targets if t != m and not m.startswith(f"{t}.")}
             for m, targets in _imports(modules).items()}
    assert _cycles(edges) == []


def test_no_private_name_is_imported_from_another_module():
    modules = _modules()
    private = sorted(f"{m} imports {t}.{name}" for m, targets in _imports(modules).items()
                     for t, name in targets if name and name.startswith("_") and t != m)
    assert private == []


def test_lib_holds_only_the_shared_modules_and_imports_nothing_else_of_ours():
    modules = _modules()
    assert sorted(m for m in modules if m.startswith("dagster_project.lib.") or m == "dagster_project.lib") \
        == sorted(SHARED)
    assert sorted(p.name for p in (REPO / "dagster_project" / "lib").iterdir() if p.name != "__pycache__") \
        == sorted(f"{m.rpartition('.')[2] if m != 'dagster_project.lib' else '__init__'}.py" for m in SHARED)
    outside = sorted(f"{m} imports {t}" for m, targets in _imports(modules).items() if m in SHARED
                     for t, _ in targets if t not in SHARED)
    assert outside == []


def _in_cli(module: str) -> bool:
    return module == CLI or module.startswith(f"{CLI}.")


def test_the_cli_is_a_leaf():
    # Nothing of ours imports the command line: only the entry point (pyproject's recon) and the tests.
    modules = _modules()
    importers = sorted(f"{m} imports {t}" for m, targets in _imports(modules).items() if not _in_cli(m)
                       for t, _ in targets if _in_cli(t))
    assert importers == []


def test_the_checks_see_a_circle_and_a_private_import(tmp_path):
    # The two checks above can fail: on a made-up pair of modules they do.
    edges = {"a": {"b"}, "b": {"a"}, "c": {"a"}}
    assert _cycles(edges) == [["a", "b"]]
    pkg = tmp_path / "ingestion"
    pkg.mkdir()
    (pkg / "one.py").write_text("def _hidden():\n    pass\n")
    (pkg / "two.py").write_text("def f():\n    from ingestion.one import _hidden\n")
    found = _imports({"ingestion.one": pkg / "one.py", "ingestion.two": pkg / "two.py"})
    assert ("ingestion.one", "_hidden") in found["ingestion.two"]


DEMO = "ingestion.demo"


def test_the_demo_generator_is_a_room_of_its_own():
    # It ships (recon demo runs it) but the runtime never leans on it: only the CLI's `recon demo`
    # imports it, and it reads nothing of ours but the catalogue (the roles and the diff types).
    modules = _modules()
    importers = sorted(m for m, targets in _imports(modules).items() if not m.startswith(DEMO)
                       and any(t == DEMO or t.startswith(f"{DEMO}.") for t, _ in targets))
    assert importers == [CLI]
    reads = sorted({t for m, targets in _imports(modules).items() if m.startswith(DEMO)
                    for t, _ in targets if not t.startswith(DEMO)})
    assert reads == ["ingestion.catalogue"]
