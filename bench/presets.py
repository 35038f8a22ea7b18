"""Named params presets (bench/presets.yaml): the settings behind the rows of the results tables (docs/results.md).

One file serves the benchmarks (`--preset NAME`) and users: `python -m bench.presets NAME` prints
the `dvc exp run` command that runs the preset in their own project.
"""

import sys
from pathlib import Path

import yaml

PRESETS_FILE = Path(__file__).with_name("presets.yaml")


def load_presets() -> dict[str, list[str]]:
    return yaml.safe_load(PRESETS_FILE.read_text())


def preset_settings(name: str) -> list[str]:
    presets = load_presets()
    if name not in presets:
        raise SystemExit(f"error: {PRESETS_FILE}: no preset {name!r} (choose one of {', '.join(presets)})")
    return presets[name]


def dvc_command(name: str) -> str:
    return " ".join(["dvc exp run -n", name, *(f"-S {setting}" for setting in preset_settings(name))])


if __name__ == "__main__":
    for preset in sys.argv[1:] or load_presets():
        print(dvc_command(preset))
