"""The package layout the README describes: who may import whom, and no cycles."""

from __future__ import annotations

import ast
from pathlib import Path

APP = Path(__file__).resolve().parents[1] / "app"
# package -> the app packages it must never import (the README's layout section)
FORBIDDEN = {
    "app.stats": ("app.web", "app.store", "app.github", "app.events", "app.queue", "app.workflow", "app.triage"),
    "app.triage": ("app.web", "app.store", "app.github", "app.events", "app.queue", "app.workflow", "app.stats"),
    "app.store": ("app.web", "app.github", "app.events", "app.queue", "app.workflow", "app.triage", "app.stats"),
    "app.github": ("app.web", "app.store", "app.events", "app.queue", "app.workflow"),
    "app.workflow": ("app.web", "app.events", "app.queue"),
    "app.events": ("app.web", "app.queue"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in APP.rglob("*.py")}


def imports_of(module: str) -> set[str]:
    """Every app module ``module`` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found |= {name for name in names if name in MODULES and name != module}
    return found


GRAPH = {module: imports_of(module) for module in MODULES}


def test_the_product_imports_no_test_double() -> None:
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        names |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not {n for n in names if n.split(".")[0] == "tests" or "simulator" in n or "synthetic" in n}, module


def test_packages_import_only_what_the_layout_allows() -> None:
    broken = [f"{module} imports {target}" for module, targets in GRAPH.items() for target in targets
              for package, banned in FORBIDDEN.items()
              if (module == package or module.startswith(package + "."))
              and any(target == b or target.startswith(b + ".") for b in banned)]
    assert broken == []


def test_no_import_cycle() -> None:
    cycles = []
    for start in GRAPH:
        stack, seen = [(start, (start,))], set()
        while stack:
            module, path = stack.pop()
            for target in GRAPH[module]:
                if target == start:
                    cycles.append(" -> ".join((*path, start)))
                elif target not in seen and not target.startswith(module + "."):
                    seen.add(target)
                    stack.append((target, (*path, target)))
    assert cycles == []
