"""Stage `ambiguous`: the test digits the model is least sure about, under the definitions of
`stages.lib.ambiguity`.

Reads the (calibrated) probabilities saved by `evaluate` (no second prediction pass) and the raw test images.
Writes, inside data/ambiguous (replaced as a whole, so a crash leaves the previous result):
- <definition>/<test index>.png: each chosen digit, upscaled;
- <definition>/table.csv: what the model said about each, most ambiguous first;
- galleries/<definition>.png: all of a definition's digits on one captioned page;
- summary.json: every definition's description and table.
A definition that finds fewer than `top_n` digits (few errors, say) reports the ones it found.
"""

import numpy as np

from stages.lib import paths
from stages.lib.ambiguity import DEFINITIONS, describe
from stages.lib.atomic import atomic_dir, write_csv, write_json
from stages.lib.errors import UserError, run_stage
from stages.lib.npz import read_npz
from stages.lib.params import load_params
from stages.lib.pictures import digit_caption, save_digit_png, save_gallery


def load_inputs() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """probs, labels, test indices and raw images, checked to describe the same test digits."""
    predicted = read_npz(paths.PROBS_NPZ, ("probs", "labels", "index"), "evaluate")
    test = read_npz(paths.TEST_NPZ, ("original", "index"), "preprocess")
    probs, labels, index = predicted["probs"], predicted["labels"], predicted["index"]
    n = len(labels)
    if probs.shape != (n, 10) or index.shape != (n,):
        raise UserError(f"{paths.PROBS_NPZ}: probs {probs.shape} / index {index.shape} do not fit {n} labels")
    if test["original"].shape != (n, 28, 28) or not np.array_equal(test["index"], index):
        raise UserError(f"{paths.PROBS_NPZ}: does not match the test digits of {paths.TEST_NPZ}; rerun the evaluate stage")
    return probs, labels, index, test["original"]


def title(name: str, shown: int, top_n: int) -> str:
    description = DEFINITIONS[name].__doc__.split(":")[0].rstrip(".")
    return f"{name}: {description} ({shown} of top {top_n})"


def main() -> None:
    top_n = load_params("ambiguous").top_n
    probs, labels, index, originals = load_inputs()
    summary = {}
    with atomic_dir(paths.AMBIGUOUS) as folder:
        for name, definition in DEFINITIONS.items():
            positions = definition(probs, labels, top_n)
            table = describe(probs, labels, positions, index)
            for position, test_index in zip(positions, table["index"]):
                save_digit_png(originals[position], folder / name / f"{test_index}.png")
            write_csv(folder / name / "table.csv", table)
            rows = table.to_dict("records")
            save_gallery(
                [originals[position] for position in positions],
                [digit_caption(row) for row in rows],
                folder / "galleries" / f"{name}.png",
                title=title(name, len(rows), top_n),
                wrong=list(~table["correct"]),
            )
            summary[name] = {"description": definition.__doc__, "digits": rows}
            print(f"{name}: {len(rows)} digits")
        write_json(folder / paths.AMBIGUOUS_SUMMARY.name, summary)


if __name__ == "__main__":
    run_stage(main)
