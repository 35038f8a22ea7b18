"""The package's layering, as each subpackage's __init__.py states it: a subpackage imports only the
package root and the subpackages its "May import:" line names, so that the tree reads top-down and a
module's place bounds what editing it reruns."""

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "mnist_dvc"
SUBPACKAGES = sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py"))


def allowed_imports(subpackage: str) -> set[str]:
    """The subpackages named on the "May import:" line of `subpackage`'s docstring ("every other" for all)."""
    doc = ast.get_docstring(ast.parse((PACKAGE / subpackage / "__init__.py").read_text())) or ""
    line = re.search(r"May import: (.*?)\.?$", doc, re.S)
    assert line, f"mnist_dvc/{subpackage}/__init__.py: no 'May import:' line"
    if line.group(1).startswith("every other"):
        return set(SUBPACKAGES)
    return {name.strip().removeprefix("mnist_dvc.") for name in line.group(1).split(",")} - {"mnist_dvc"}


def imported_subpackages(path: Path) -> set[str]:
    """The mnist_dvc subpackages that `path` imports, also inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        if isinstance(node, ast.ImportFrom) and node.module == "mnist_dvc":
            names += [f"mnist_dvc.{a.name}" for a in node.names]
        found |= {n.split(".")[1] for n in names if n.startswith("mnist_dvc.") and n.split(".")[1] in SUBPACKAGES}
    return found


@pytest.mark.parametrize("subpackage", SUBPACKAGES)
def test_a_subpackage_imports_only_the_subpackages_below_it(subpackage):
    allowed = allowed_imports(subpackage) | {subpackage}
    for module in sorted((PACKAGE / subpackage).glob("*.py")):
        extra = imported_subpackages(module) - allowed
        assert not extra, f"{module.relative_to(PACKAGE.parent)} imports mnist_dvc.{', mnist_dvc.'.join(sorted(extra))}, above it"


def test_the_layers_form_a_line_with_no_cycle():
    """Each subpackage may import exactly the ones listed before it in the root's docstring."""
    order = re.findall(r"^    (\w+) ", ast.get_docstring(ast.parse((PACKAGE / "__init__.py").read_text())), re.M)
    assert sorted(order) == SUBPACKAGES
    for place, subpackage in enumerate(order):
        assert allowed_imports(subpackage) - {subpackage} == set(order[:place]), subpackage


def test_the_root_imports_no_subpackage_and_subpackage_inits_hold_only_a_docstring():
    for path in [PACKAGE / "__init__.py", PACKAGE / "errors.py"]:
        assert not imported_subpackages(path), path
    for subpackage in SUBPACKAGES:
        body = ast.parse((PACKAGE / subpackage / "__init__.py").read_text()).body
        assert len(body) == 1 and isinstance(body[0].value, ast.Constant), f"mnist_dvc/{subpackage}/__init__.py"
