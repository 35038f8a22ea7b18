"""`mnist-dvc predict` on a real (small) trained model: image folders, Kaggle CSVs, machine output
(kept clean of status lines), the sheet, and one clear line per bad input."""

import io
import json
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from mnist_dvc.analysis.ambiguity import cutoffs
from mnist_dvc.config import paths
from mnist_dvc.digits.kaggle_csv import PIXELS
from mnist_dvc.digits.preparation import prepare
from mnist_dvc.models.inference import predict_proba
from mnist_dvc.models.saved import load_classifier, preparation


@pytest.fixture(scope="module")
def project(trained_project):
    return trained_project


def predict(project, *args):
    return subprocess.run([sys.executable, "-c", "from mnist_dvc.app.cli import main; main()", "predict", *map(str, args)],
                          cwd=project, capture_output=True, text=True, timeout=120)


def test_a_folder_of_images_gets_one_line_per_digit(project):
    done = predict(project, "samples/digits")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 20 and all(": " in line and "(p=" in line and "second" in line for line in lines)
    right = sum(line.split(": ")[1][0] == line.split("/")[-1][0] for line in lines)
    assert right >= 14  # a 2-epoch MLP on 3,000 digits reads most of the drawn samples


def test_json_and_csv_carry_every_column(project):
    records = json.loads(predict(project, "samples/digits/7-thin-dark-on-white.png", "--json").stdout)
    assert set(records[0]) == {"name", "prediction", "confidence", "second", "second_confidence", "margin", "entropy", "ambiguous"}
    header = predict(project, "samples/digits", "--csv").stdout.splitlines()[0]
    assert header == "name,prediction,confidence,second,second_confidence,margin,entropy,ambiguous"


def test_a_bad_file_is_named_and_the_rest_still_predicted(project, tmp_path):
    (tmp_path / "broken.png").write_bytes(b"not a picture")
    shutil.copy(project / "samples/digits/3-thin-dark-on-white.png", tmp_path / "three.png")
    done = predict(project, tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"error: {tmp_path / 'broken.png'}: not a PNG, JPEG, BMP, GIF or WebP picture (or cut short within its header)"]
    assert len(done.stdout.splitlines()) == 1 and "three.png" in done.stdout


def test_show_writes_a_sheet_and_says_so_on_stderr_keeping_machine_output_clean(project, tmp_path):
    done = predict(project, "samples/digits", "--show", tmp_path / "sheet.png")
    assert done.returncode == 0 and (tmp_path / "sheet.png").read_bytes().startswith(b"\x89PNG")
    assert done.stderr == f"{tmp_path / 'sheet.png'}: 20 digits\n" and len(done.stdout.splitlines()) == 20
    done = predict(project, "samples/digits", "--csv", "--show", tmp_path / "sheet.png")  # --json: the Kaggle test below
    assert done.returncode == 0 and done.stderr == f"{tmp_path / 'sheet.png'}: 20 digits\n"
    rows = pd.read_csv(io.StringIO(done.stdout))
    assert len(rows) == 20 and rows["name"].str.startswith("samples/digits/").all()


def test_an_empty_folder_and_too_large_a_picture_are_named_each_on_its_line(project, tmp_path):
    (tmp_path / "empty").mkdir()
    Image.new("L", (5000, 4000), 255).save(tmp_path / "huge.png")
    done = predict(project, tmp_path / "empty", tmp_path / "huge.png", "samples/digits/3-thin-dark-on-white.png")
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"error: {tmp_path / 'empty'}: no image files in this folder (looked for .bmp, .gif, .jpeg, .jpg, .png, .webp)",
        f"error: {tmp_path / 'huge.png'}: too large: 5000x4000 pixels; the limit is 16,777,216 (4096x4096), so scale the picture down",
    ]
    assert done.stdout.startswith("samples/digits/3-thin-dark-on-white.png: ") and len(done.stdout.splitlines()) == 1


def test_a_summary_without_its_temperature_says_to_rerun_the_ambiguous_stage(project, tmp_path):
    summary = json.loads((project / paths.AMBIGUOUS_SUMMARY).read_text())
    del summary["temperature"]
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    done = predict(project, "samples/digits", "--ambiguous", tmp_path / "summary.json")
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (f"error: {tmp_path / 'summary.json'}: no calibration temperature (written by an older ambiguous "
                           "stage); rerun the ambiguous stage (dvc repro)\n")


def test_kaggle_csv_gives_a_submission_and_a_bad_row_names_its_line(project, tmp_path, mnist_train):
    images, labels = mnist_train
    rows = np.column_stack([labels[5000:5100], images[5000:5100].reshape(100, -1)])
    header = "label," + ",".join(f"pixel{i}" for i in range(784))
    (tmp_path / "test.csv").write_text(header + "\n" + "\n".join(",".join(map(str, row)) for row in rows) + "\n")
    done = predict(project, "--kaggle", tmp_path / "test.csv", "--out", tmp_path / "submission.csv")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == f"{tmp_path / 'submission.csv'}: 100 predictions\n"
    submission = (tmp_path / "submission.csv").read_text().splitlines()
    assert submission[0] == "ImageId,Label" and [line.split(",")[0] for line in submission[1:]] == [str(i) for i in range(1, 101)]
    prepared = prepare(images[5000:5100], preparation(project / paths.MODEL))  # deskewed, as the model's own digits
    model_says = predict_proba(load_classifier(project / paths.MODEL), prepared, 100).argmax(axis=1)
    assert [int(line.split(",")[1]) for line in submission[1:]] == model_says.tolist()  # the CSV's digits need no re-layout

    lines = (tmp_path / "test.csv").read_text().splitlines()
    lines[3] = lines[3].replace(",0,", ",300,", 1)
    (tmp_path / "bad.csv").write_text("\n".join(lines) + "\n")
    done = predict(project, "--kaggle", tmp_path / "bad.csv", "--out", tmp_path / "never.csv")
    assert done.returncode == 1 and "line 4" in done.stderr and not (tmp_path / "never.csv").exists()


def test_kaggle_with_json_prints_every_digit_with_its_verdict_and_the_sheet_shows_the_first_ones(project, tmp_path, mnist_train):
    images, labels = mnist_train
    rows = np.column_stack([labels[6000:6120], images[6000:6120].reshape(120, -1)])
    (tmp_path / "train.csv").write_text("label," + ",".join(PIXELS) + "\n" + "\n".join(",".join(map(str, row)) for row in rows) + "\n")
    done = predict(project, "--kaggle", tmp_path / "train.csv", "--out", tmp_path / "submission.csv", "--json", "--show", tmp_path / "sheet.png")
    assert done.returncode == 0, done.stderr
    records = json.loads(done.stdout)
    assert [record["name"] for record in records] == [str(i) for i in range(1, 121)]
    submission = pd.read_csv(tmp_path / "submission.csv")
    assert submission["Label"].tolist() == [record["prediction"] for record in records]
    assert done.stderr.splitlines() == [f"{tmp_path / 'submission.csv'}: 120 predictions", f"{tmp_path / 'sheet.png'}: the first 100 of 120 digits"]
    limit = cutoffs(json.loads((project / paths.AMBIGUOUS_SUMMARY).read_text()))["confident_wrong"]
    for record, label in zip(records, labels[6000:6120]):  # the labels make confident_wrong judged
        expected = record["prediction"] != label and record["confidence"] >= limit
        assert ("confident_wrong" in record["ambiguous"].split("+")) == expected


def test_digits_are_prepared_as_the_model_was_trained_whatever_params_yaml_says_now(project, tmp_path, edit_params):
    """The model was trained on deskewed digits without stroke normalisation; a params.yaml that now
    says the opposite changes nothing: the preparation comes from the model's model.json."""
    before = predict(project, "samples/digits", "--csv")
    assert before.returncode == 0, before.stderr
    copy = tmp_path / "project"
    shutil.copytree(project, copy, symlinks=True)
    edit_params(copy, {"preprocess.deskew": False, "preprocess.stroke": True})
    after = predict(copy, "samples/digits", "--csv")
    assert after.returncode == 0, after.stderr
    assert after.stdout == before.stdout
