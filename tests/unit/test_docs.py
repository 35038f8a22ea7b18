"""The README's layout section matches the tree: it names every stage script, library module and
benchmark that exists and every top-level entry of the repository, and no file that does not exist."""

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NAMED_FOLDERS = ("stages", "stages/lib", "bench")  # every module in these is named
UNLISTED = {".gitignore", ".dvcignore", "README.md"}  # top-level files the layout need not explain


def layout_block() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Layout and development"):]
    return section[section.index("```") + 3 : section.index("```", section.index("```") + 3)]


def test_the_layout_names_every_module_of_stages_stages_lib_and_bench():
    named = set(re.findall(r"\b([a-z_]+\.py)\b", layout_block()))
    present = {path.name for folder in NAMED_FOLDERS for path in (REPO / folder).glob("*.py") if path.name != "__init__.py"}
    assert not present - named, f"not in the README's layout: {sorted(present - named)}"


def test_every_file_the_layout_names_exists():
    named = set(re.findall(r"\b([a-z_]+\.(?:py|yaml|toml))\b", layout_block()))
    existing = {path.name for path in REPO.glob("*")} | {path.name for folder in (*NAMED_FOLDERS, "tests", "samples", "committee", "audit")
                                                         for path in (REPO / folder).glob("*")}
    assert not named - existing, f"in the README's layout but not in the tree: {sorted(named - existing)}"


def test_the_layout_names_every_top_level_entry():
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    if not tracked:  # not a git checkout (an unpacked archive): nothing to compare against
        return
    top = {name.split("/")[0] for name in tracked} - UNLISTED
    block = layout_block()
    missing = sorted(entry for entry in top if not re.search(rf"(^|\s){re.escape(entry)}(/|,|\s)", block, re.MULTILINE))
    assert not missing, f"top-level entries not in the README's layout: {missing}"
