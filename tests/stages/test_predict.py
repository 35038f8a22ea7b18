"""The predict stage run for real on the small trained model of `trained_project`: calibrated
probabilities with the ambiguous stage's temperature, a sheet of the first digits only, and one
line for an empty folder or a summary too old to hold the temperature."""

import json
import shutil

import pandas as pd
import pytest
from PIL import Image

from mnist_dvc.analysis.ambiguity import load_cutoffs
from mnist_dvc.app import own_digits
from mnist_dvc.config import paths
from mnist_dvc.errors import UserError
from mnist_dvc.models.saved import load_classifier, preparation
from stages import predict


@pytest.fixture
def project(tmp_path, monkeypatch, trained_project, repo_root, edit_params):
    """A folder with the trained project's model and ambiguous summary, params.yaml reading
    `digits/`, and in it three sample digits."""
    (tmp_path / paths.AMBIGUOUS).mkdir(parents=True)
    shutil.copy(trained_project / paths.AMBIGUOUS_SUMMARY, tmp_path / paths.AMBIGUOUS_SUMMARY)
    (tmp_path / paths.MODEL).symlink_to(trained_project / paths.MODEL)
    shutil.copy(repo_root / "params.yaml", tmp_path / "params.yaml")
    edit_params(tmp_path, {"predict.input": "digits"})
    (tmp_path / "digits").mkdir()
    for name in ("3-thin-dark-on-white.png", "7-bold-white-on-board.jpg", "8-thin-dark-on-white.png"):
        shutil.copy(repo_root / "samples" / "digits" / name, tmp_path / "digits" / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_writes_calibrated_predictions_and_a_sheet_of_the_first_digits(project, monkeypatch, capsys):
    monkeypatch.setattr(own_digits, "SHEET_DIGITS", 2)
    predict.main()
    table = pd.read_csv(project / paths.PREDICTIONS_CSV, keep_default_na=False)
    batch = own_digits.from_files([project / "digits"], preparation(paths.MODEL))
    expected = own_digits.predict(load_classifier(paths.MODEL), batch, *load_cutoffs(paths.AMBIGUOUS_SUMMARY))
    assert table["confidence"].tolist() == pytest.approx(expected["confidence"].tolist(), abs=1e-6)
    assert table["ambiguous"].tolist() == expected["ambiguous"].tolist()
    assert (project / paths.PREDICTIONS_SHEET).read_bytes().startswith(b"\x89PNG")
    assert capsys.readouterr().out == f"{paths.PREDICTIONS}: 3 digits from digits (the sheet shows 2)\n"


def test_an_empty_folder_is_named_and_nothing_is_written(project):
    shutil.rmtree(project / "digits")
    (project / "digits").mkdir()
    with pytest.raises(UserError, match=r"^digits: no image files in this folder"):
        predict.main()
    assert not (project / paths.PREDICTIONS).exists()


def test_unreadable_pictures_stop_the_stage_naming_the_first_and_counting_the_rest(project):
    for name in ("broken.png", "notes.png"):
        (project / "digits" / name).write_text("not a picture")
    with pytest.raises(UserError, match=r"^digits/broken\.png: .* \(and 1 more inputs that cannot be read\)$"):
        predict.main()
    assert not (project / paths.PREDICTIONS).exists()


def test_a_summary_without_its_temperature_says_to_rerun_the_ambiguous_stage(project):
    summary = json.loads((project / paths.AMBIGUOUS_SUMMARY).read_text())
    del summary["temperature"]
    (project / paths.AMBIGUOUS_SUMMARY).write_text(json.dumps(summary))
    with pytest.raises(UserError, match=r"^data/ambiguous/summary.json: no calibration temperature .*rerun the ambiguous stage"):
        predict.main()
    assert not (project / paths.PREDICTIONS).exists()


def test_pictures_over_the_pixel_limit_stop_the_stage_with_their_name(project):
    Image.new("L", (4097, 4096), 255).save(project / "digits" / "scan.png")
    with pytest.raises(UserError, match=r"^digits/scan.png: too large: 4097x4096 pixels"):
        predict.main()
