"""The README's layout section names every stage script and library module that exists, and
nothing that does not."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def layout_block() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Layout and development"):]
    return section[section.index("```") + 3 : section.index("```", section.index("```") + 3)]


def test_the_layout_lists_exactly_the_modules_of_stages_and_stages_lib():
    named = set(re.findall(r"\b([a-z_]+\.py)\b", layout_block()))
    present = {path.name for folder in ("stages", "stages/lib") for path in (REPO / folder).glob("*.py") if path.name != "__init__.py"}
    assert not present - named, f"not in the README's layout: {sorted(present - named)}"
    helpers = {"http_mirror.py", "distributed_steps.py", "test_dvc_yaml.py", "test_readme.py", "presets.yaml"}
    assert not named - present - helpers, f"in the README's layout but not in stages/: {sorted(named - present - helpers)}"
