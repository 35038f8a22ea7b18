"""The README and the pages in docs/: the README stays short and keeps the CI's test command; every
link between them resolves; docs/development.md's layout names every module of mnist_dvc/, stages/
and bench/ and every top-level entry, and no path that does not exist; and every measured figure in
them is what bench/report.py writes from its JSON."""

import ast
import re
import subprocess
from pathlib import Path

import pytest

from bench import report

REPO = Path(__file__).resolve().parents[2]
README_MAX_LINES = 200
PAGES = ["README.md", *sorted(str(path.relative_to(REPO)) for path in (REPO / "docs").glob("*.md"))]
LAYOUT_PAGE = "docs/development.md"
LAYOUT_FOLDERS = ("mnist_dvc", "stages", "bench")  # every module in these (and their subfolders) is named
UNLISTED = {".gitignore", ".dvcignore", "README.md"}  # top-level files the layout need not explain
# Measured percentages quoted outside the generated blocks: measurements that no JSON file records,
# each stated beside its command, machine and date (docs/results.md, docs/choices.md, docs/models.md,
# docs/committee-and-audit.md). Any other figure of this form belongs in a bench/report.py block.
UNTIED = {"99.55%", "99.50%", "99.59%", "99.62%", "98.56%", "98.61%", "97.52%"}


def text(page: str) -> str:
    return (REPO / page).read_text()


def layout() -> str:
    """The layout section of docs/development.md: from "## Layout" to the next second-level heading."""
    page = text(LAYOUT_PAGE)
    start = page.index("## Layout\n")
    end = page.find("\n## ", start + 1)
    return page[start:] if end < 0 else page[start:end]


def named_paths(section: str) -> set[str]:
    """Every path the section names in backticks, relative to the project root (a folder ends in /)."""
    return {name for name in re.findall(r"`([\w.-]+(?:/[\w.-]+)*/?)`", section) if "/" in name}


def is_empty_init(path: Path) -> bool:
    """An `__init__.py` that holds nothing but, at most, a docstring: its package's folder is named instead."""
    body = ast.parse(path.read_text()).body
    return path.name == "__init__.py" and (not body or (len(body) == 1 and isinstance(body[0], ast.Expr)))


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: str) -> set[str]:
    body = re.sub(r"```.*?```", "", text(page), flags=re.S)
    return {slug(heading) for heading in re.findall(r"^#+ (.+)$", body, re.M)}


def links(page: str) -> list[str]:
    """The targets of the page's Markdown links and images, outside code blocks, but for web addresses."""
    body = re.sub(r"```.*?```", "", text(page), flags=re.S)
    return [target for target in re.findall(r"\]\(([^)\s]+)\)", body) if not re.match(r"[a-z]+://", target)]


def test_the_readme_is_short():
    lines = len(text("README.md").splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines, more than {README_MAX_LINES}: move the detail to docs/"


def test_the_readme_shows_the_test_command_that_ci_runs():
    command = next(line for line in reversed(text(".ci/run").splitlines()) if line.strip())
    assert command in text("README.md"), f"README.md does not show .ci/run's test command verbatim: {command}"


@pytest.mark.parametrize("page", PAGES)
def test_every_link_resolves(page):
    broken = []
    for target in links(page):
        path, _, anchor = target.partition("#")
        resolved = (REPO / page).parent / path if path else REPO / page
        if not resolved.exists():
            broken.append(target)
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(str(resolved.resolve().relative_to(REPO))):
            broken.append(target)
    assert not broken, f"{page}: links to nothing: {broken}"


def test_the_layout_names_every_module_of_mnist_dvc_stages_and_bench():
    named = named_paths(layout())
    modules = {str(path.relative_to(REPO)) for folder in LAYOUT_FOLDERS for path in (REPO / folder).rglob("*.py")
               if not is_empty_init(path)}
    packages = {f"{path.parent.relative_to(REPO)}/" for path in (REPO / "mnist_dvc").rglob("__init__.py")
                if path.parent != REPO / "mnist_dvc"}
    missing = sorted((modules | packages) - named)
    assert not missing, f"not in {LAYOUT_PAGE}'s layout: {missing}"


def test_every_path_the_layout_names_exists():
    missing = sorted(name for name in named_paths(layout()) if not (REPO / name).exists())
    assert not missing, f"in {LAYOUT_PAGE}'s layout but not in the tree: {missing}"


def test_the_layout_names_every_top_level_entry():
    try:
        listed = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True)
    except FileNotFoundError:
        pytest.skip("git is not installed: no tracked files to compare against")
    if listed.returncode or not listed.stdout.split():
        pytest.skip("not a git checkout (an unpacked archive): no tracked files to compare against")
    top = {name.split("/")[0] for name in listed.stdout.split()} - UNLISTED
    section = layout()
    missing = sorted(entry for entry in top if not re.search(rf"`{re.escape(entry)}[/`]", section))
    assert not missing, f"top-level entries not in {LAYOUT_PAGE}'s layout: {missing}"


def test_the_measured_figures_are_what_bench_report_writes_from_the_json():
    stale = report.report(REPO, check=True)
    assert not stale, f"stale tables in {stale}: run `python -m bench.report`"


@pytest.mark.parametrize("page", PAGES)
def test_measured_percentages_stand_in_generated_blocks_unless_no_json_records_them(page):
    prose = report.BLOCK.sub("", text(page))
    loose = sorted(set(re.findall(r"\b\d+\.\d\d%", prose)) - UNTIED)
    assert not loose, (f"{page}: {loose} outside a generated block: write it from its JSON with bench/report.py, "
                       "or, where no JSON records it, state its command, machine and date and add it to UNTIED")
