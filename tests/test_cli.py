"""`mnist-dvc predict` on a real (small) trained model: image folders, Kaggle CSVs, machine output,
the sheet, and one clear line per bad input."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from stages.lib import paths
from stages.lib.inference import predict_proba
from stages.lib.model_files import load_classifier, preparation
from stages.lib.preparation import prepare


@pytest.fixture(scope="module")
def project(trained_project):
    return trained_project


def predict(project, *args):
    return subprocess.run([sys.executable, "-c", "from stages.lib.cli import main; main()", "predict", *map(str, args)],
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


def test_show_writes_a_sheet(project, tmp_path):
    done = predict(project, "samples/digits", "--show", tmp_path / "sheet.png")
    assert done.returncode == 0 and (tmp_path / "sheet.png").read_bytes().startswith(b"\x89PNG")


def test_kaggle_csv_gives_a_submission_and_a_bad_row_names_its_line(project, tmp_path, mnist_train):
    images, labels = mnist_train
    rows = np.column_stack([labels[5000:5100], images[5000:5100].reshape(100, -1)])
    header = "label," + ",".join(f"pixel{i}" for i in range(784))
    (tmp_path / "test.csv").write_text(header + "\n" + "\n".join(",".join(map(str, row)) for row in rows) + "\n")
    done = predict(project, "--kaggle", tmp_path / "test.csv", "--out", tmp_path / "submission.csv")
    assert done.returncode == 0, done.stderr
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
