"""Stage `ambiguous`: the test digits the model is least sure about, under four definitions of "ambiguous".

Reads the probabilities saved by `evaluate` (no second prediction pass) and the raw test images.
Writes, inside data/ambiguous (replaced as a whole, so a crash leaves the previous result):
- <definition>/<test index>.png: each chosen digit, upscaled;
- <definition>/table.csv: what the model said about each, most ambiguous first;
- galleries/<definition>.png: all of a definition's digits on one captioned page;
- summary.json: every definition's description and table.
A definition that finds fewer than `top_n` digits (few errors, say) reports the ones it found.
"""

from pathlib import Path

import numpy as np

from stages.ambiguity import DEFINITIONS, TABLE_COLUMNS, describe
from stages.atomic import atomic_dir, write_json
from stages.errors import UserError, run_stage
from stages.npz import read_npz
from stages.params import load_params
from stages.render import digit_caption, save_digit_png, save_gallery, write_csv

PROBS_NPZ = Path("data/eval/probs.npz")
TEST_SET = Path("data/prepared/test.npz")
OUTPUT_DIR = Path("data/ambiguous")


def load_inputs() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """probs, labels, test indices and raw images, checked to describe the same test digits."""
    predicted = read_npz(PROBS_NPZ, ("probs", "labels", "index"), "evaluate")
    test = read_npz(TEST_SET, ("original", "index"), "preprocess")
    probs, labels, index = predicted["probs"], predicted["labels"], predicted["index"]
    n = len(labels)
    if probs.shape != (n, 10) or index.shape != (n,):
        raise UserError(f"{PROBS_NPZ}: probs {probs.shape} / index {index.shape} do not fit {n} labels")
    if test["original"].shape != (n, 28, 28) or not np.array_equal(test["index"], index):
        raise UserError(f"{PROBS_NPZ}: does not match the test digits of {TEST_SET}; rerun the evaluate stage")
    return probs, labels, index, test["original"]


def title(name: str, shown: int, top_n: int) -> str:
    description = DEFINITIONS[name].__doc__.split(":")[0].rstrip(".")
    return f"{name}: {description} ({shown} of top {top_n})"


def main() -> None:
    top_n = load_params("ambiguous").top_n
    probs, labels, index, originals = load_inputs()
    summary = {}
    with atomic_dir(OUTPUT_DIR) as folder:
        for name, definition in DEFINITIONS.items():
            positions = definition(probs, labels, top_n)
            rows = describe(probs, labels, positions, index)
            for position, row in zip(positions, rows):
                save_digit_png(originals[position], folder / name / f"{row['index']}.png")
            write_csv(folder / name / "table.csv", rows, TABLE_COLUMNS)
            save_gallery(
                [originals[position] for position in positions],
                [digit_caption(row) for row in rows],
                folder / "galleries" / f"{name}.png",
                title=title(name, len(rows), top_n),
                wrong=[not row["correct"] for row in rows],
            )
            summary[name] = {"description": DEFINITIONS[name].__doc__, "digits": rows}
            print(f"{name}: {len(rows)} digits")
        write_json(folder / "summary.json", summary)


if __name__ == "__main__":
    run_stage(main)
