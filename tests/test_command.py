"""The console script's module (lstm_explorer) is the only one that knows both sides: it opens the window, hands the
window's benchmark to the explorer and everything else to core's headless command line. core imports nothing of the
explorer, and the explorer's modules import each other without cycles."""

from __future__ import annotations

import ast
import contextlib
import io
import sys
import types
from pathlib import Path

import pytest

import lstm_explorer

ROOT = Path(lstm_explorer.__file__).resolve().parent


def run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = lstm_explorer.main(argv)
    return code, out.getvalue(), err.getvalue()


def test_no_subcommand_or_window_options_open_the_window(monkeypatch: pytest.MonkeyPatch) -> None:
    received = []
    window = types.ModuleType("explorer.app")
    window.run = lambda argv: received.append(argv) or 0
    monkeypatch.setitem(sys.modules, "explorer.app", window)
    assert run([])[0] == 0
    assert run(["--screenshot", "shot.png"])[0] == 0
    assert received == [[], ["--screenshot", "shot.png"]]


def test_without_the_window_the_help_is_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "explorer.app", None)  # makes the import fail
    code, out, _ = run([])
    assert code == 0
    assert "train" in out and "The window is not available" in out
    code, _, err = run(["--screenshot", "x.png"])
    assert code == 2 and "not available" in err


def test_the_window_benchmark_goes_to_the_explorer_and_the_rest_to_core(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    for name in ("core.sweep", "explorer.bench"):
        module = types.ModuleType(name)
        module.main = lambda argv, name=name: calls.append((name, argv)) or 0
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(sys.modules["explorer"], "bench", sys.modules["explorer.bench"], raising=False)
    assert run(["sweep", "--csv", "out.csv"])[0] == 0
    assert run(["bench", "--soak", "60"])[0] == 0
    assert run(["bench", "--gui"])[0] == 0
    assert calls == [("core.sweep", ["--csv", "out.csv"]), ("explorer.bench", ["--soak", "60"]),
                     ("explorer.bench", ["--gui"])]
    assert run(["--version"])[0] == 0, "core's own options stay core's"


def module_imports(path: Path) -> set[str]:
    """Every module a source file imports (at any level: a deferred import is an import too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


# Known exceptions, each a deferred import that runs only on its own option; to be moved behind lstm_explorer.
DEFERRED_WINDOW_IMPORTS = {"core/sweep_cli.py": "sweep --plot draws the maps with explorer.panels.sweep"}


def test_core_imports_nothing_of_the_explorer_or_qt() -> None:
    for path in sorted((ROOT / "core").rglob("*.py")):
        bad = {name for name in module_imports(path) if name.split(".")[0] in ("explorer", "PySide6", "pyqtgraph",
                                                                              "lstm_explorer")}
        if path.relative_to(ROOT).as_posix() in DEFERRED_WINDOW_IMPORTS:
            top_level = {name for node in ast.parse(path.read_text(encoding="utf-8")).body
                         if isinstance(node, (ast.Import, ast.ImportFrom))
                         for name in ([a.name for a in node.names] if isinstance(node, ast.Import)
                                      else [node.module or ""])}
            assert not {name for name in top_level if name.split(".")[0] in ("explorer", "PySide6")}
            continue
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_the_explorer_has_no_import_cycles() -> None:
    modules = {}
    for path in sorted((ROOT / "explorer").rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    graph = {name: {other for other in module_imports(path) if other in modules and other != name}
             for name, path in modules.items()}
    for name in modules:  # a submodule imported as `from explorer.panels import x` is an edge to x, not a cycle
        graph[name] = {dep for dep in graph[name]
                       if not (name.startswith(dep + ".") and modules[dep].name == "__init__.py")}
    visiting, done, cycles = set(), set(), []

    def visit(node: str, path: list[str]) -> None:
        if node in done:
            return
        if node in visiting:
            cycles.append([*path[path.index(node):], node])
            return
        visiting.add(node)
        for dep in sorted(graph[node]):
            visit(dep, [*path, node])
        visiting.discard(node)
        done.add(node)

    for name in sorted(modules):
        visit(name, [])
    assert cycles == [], "import cycles: " + "; ".join(" → ".join(cycle) for cycle in cycles)


def test_a_new_view_is_one_module_and_one_line() -> None:
    from explorer import main_window

    for factory in main_window.TAB_VIEWS:
        module = sys.modules[factory.__module__]
        assert factory.__name__ == "view" and module.__name__.startswith("explorer.panels.")
    source = (ROOT / "explorer" / "main_window.py").read_text(encoding="utf-8")
    assert "pkgutil" not in source and "_install(" not in source, "no views found by file name"
