"""The project's import graph, read from the source with `ast`: which project files a module needs,
directly or not. tests/unit/test_dvc_yaml.py checks every stage's deps against it, and
tests/e2e/test_pipeline.py checks that `dvc status` follows it."""

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def module_file(name: str) -> Path | None:
    """The project file that defines module `name` (relative to the project root), if any."""
    base = REPO / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate.relative_to(REPO)
    return None


def imported_modules(path: Path):
    """Every module an import statement of `path` names, also inside functions, as dotted names."""
    package = ".".join(path.with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse((REPO / path).read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base]) if base else ".".join(parent)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def docstring_only(path: Path) -> bool:
    """Whether the module at `path` is nothing but a docstring (a subpackage's __init__.py), which
    no stage's results can depend on."""
    body = ast.parse((REPO / path).read_text()).body
    return len(body) == 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)


def import_closure(start: Path) -> set[Path]:
    """`start` and every project file it imports, directly or not, but for docstring-only modules
    (the subpackages' __init__.py; the package root's holds the shared constants, so it counts)."""
    seen, todo = set(), [start]
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo += [f for f in map(module_file, imported_modules(path)) if f and not docstring_only(f)]
    return seen
