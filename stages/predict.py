"""Stage `predict`: the trained model's predictions for the digits named by `predict.input` (a folder
of image files or a Kaggle CSV), prepared as the model's own were (`mnist_dvc.app.own_digits`).

Writes data/predictions/ as a whole: predictions.csv (one row per digit: name, prediction,
confidence, second guess, margin, entropy, and the `ambiguous` stage's definitions it would fall
under; probabilities calibrated with that stage's temperature, as its cutoffs were) and sheet.png
(each input beside the 28x28 digit the model saw, for the first `own_digits.SHEET_DIGITS` digits).
An input that cannot be read, or a folder without image files, stops the stage with one line
naming it (the first of several, with how many others), so a versioned result never silently
skips a file.
"""

from pathlib import Path

from mnist_dvc.analysis.ambiguity import load_cutoffs
from mnist_dvc.app import own_digits
from mnist_dvc.config import paths
from mnist_dvc.config.params import load_params
from mnist_dvc.errors import UserError, run_stage
from mnist_dvc.io.atomic import atomic_dir, write_csv
from mnist_dvc.models.saved import load_classifier, preparation


def main() -> None:
    source = Path(load_params("predict").input)
    cutoff, temperature = load_cutoffs(paths.AMBIGUOUS_SUMMARY)
    prepared_as = preparation(paths.MODEL)
    if source.suffix.lower() == ".csv":
        batch = own_digits.from_kaggle(source, prepared_as)
    elif source.is_dir():
        batch = own_digits.from_files([source], prepared_as, keep_inputs=own_digits.SHEET_DIGITS)
    else:
        raise UserError(f"params.yaml: predict.input = {str(source)!r}: not a folder of images or a .csv file")
    if batch.failures:
        more = f" (and {len(batch.failures) - 1} more inputs that cannot be read)" if len(batch.failures) > 1 else ""
        raise UserError(batch.failures[0] + more)
    table = own_digits.predict(load_classifier(paths.MODEL), batch, cutoff, temperature)
    with atomic_dir(paths.PREDICTIONS) as folder:
        write_csv(folder / paths.PREDICTIONS_CSV.name, table)
        shown = own_digits.save_sheet(batch, table, folder / paths.PREDICTIONS_SHEET.name)
    print(f"{paths.PREDICTIONS}: {len(table)} digits from {source} (the sheet shows {shown})")


if __name__ == "__main__":
    run_stage(main)
