"""The ambiguous stage run for real in a temporary project folder, on hand-written inputs."""

import csv
import json

import numpy as np
import pytest
import yaml
from PIL import Image

from stages import ambiguous
from stages.lib.errors import UserError

N = 30
TEST_INDEX = np.arange(1200, 1200 + N, dtype=np.int64)  # not 0..N-1, so file names prove the mapping


@pytest.fixture
def project(tmp_path, monkeypatch, repo_root):
    """A folder with params.yaml (top_n = 5), test.npz and probs.npz: 3 errors among 30 digits."""
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    params["ambiguous"]["top_n"] = 5
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    rng = np.random.default_rng(0)
    labels = (np.arange(N) % 10).astype(np.uint8)
    predictions = labels.copy()
    predictions[[4, 11, 25]] = [9, 7, 0]
    probs = rng.dirichlet(np.full(10, 0.3), size=N).astype(np.float32) * 0.3
    probs[np.arange(N), predictions] += 0.7
    (tmp_path / "data" / "prepared").mkdir(parents=True)
    (tmp_path / "data" / "eval").mkdir(parents=True)
    original = rng.integers(0, 256, size=(N, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "data/prepared/test.npz", images=original, labels=labels, original=original, index=TEST_INDEX)
    np.savez(tmp_path / "data/eval/probs.npz", probs=probs, labels=labels, index=TEST_INDEX)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_writes_every_definition_with_pngs_named_by_test_index(project):
    ambiguous.main()
    out = project / "data" / "ambiguous"
    definitions = ["confident_wrong", "least_confident", "smallest_margin", "highest_entropy", "label_issues"]
    assert sorted(p.name for p in out.iterdir()) == sorted(definitions + ["galleries", "summary.json"])
    assert sorted(p.name for p in (out / "galleries").iterdir()) == sorted(f"{d}.png" for d in definitions)
    summary = json.loads((out / "summary.json").read_text())
    assert sorted(summary) == sorted(definitions)
    for name in definitions:
        with open(out / name / "table.csv") as f:
            table = list(csv.DictReader(f))
        if name == "label_issues":  # some of the three errors: those confident learning counts as mislabelled
            assert 0 < len(table) <= 3
        else:
            assert len(table) == (3 if name == "confident_wrong" else 5)  # only three errors exist
        assert [int(row["index"]) for row in table] == [row["index"] for row in summary[name]["digits"]]
        pngs = {p.name for p in (out / name).glob("*.png")}
        assert pngs == {f"{row['index']}.png" for row in table}
        assert all(1200 <= int(row["index"]) < 1200 + N for row in table)
    assert {int(row["index"]) for row in summary["confident_wrong"]["digits"]} == {1204, 1211, 1225}
    assert {int(row["index"]) for row in summary["label_issues"]["digits"]} <= {1204, 1211, 1225}
    assert summary["label_issues"]["description"].startswith("Digits whose label is probably wrong:")
    assert not any(p.name.startswith(".") for p in (project / "data").iterdir())  # no temporary folder left


def test_png_holds_the_original_test_image(project):
    ambiguous.main()
    first = json.loads((project / "data/ambiguous/summary.json").read_text())["highest_entropy"]["digits"][0]
    original = np.load(project / "data/prepared/test.npz")["original"][first["index"] - 1200]
    with Image.open(project / f"data/ambiguous/highest_entropy/{first['index']}.png") as image:
        assert np.array_equal(np.asarray(image)[::4, ::4], original)


def test_same_inputs_give_identical_outputs(project):
    ambiguous.main()
    before = {p.relative_to(project): p.read_bytes() for p in (project / "data/ambiguous").rglob("*") if p.is_file()}
    ambiguous.main()
    after = {p.relative_to(project): p.read_bytes() for p in (project / "data/ambiguous").rglob("*") if p.is_file()}
    assert before == after


def test_missing_probabilities_name_the_stage_to_run(project):
    (project / "data/eval/probs.npz").unlink()
    with pytest.raises(UserError, match=r"data/eval/probs.npz: not found; run the evaluate stage"):
        ambiguous.main()


def test_probabilities_from_another_test_set_are_refused(project):
    np.savez(project / "data/eval/probs.npz", probs=np.full((N, 10), 0.1, np.float32),
             labels=np.zeros(N, np.uint8), index=np.arange(N, dtype=np.int64))
    with pytest.raises(UserError, match="does not match the test digits"):
        ambiguous.main()
    assert not (project / "data/ambiguous").exists()


def test_corrupt_test_set_is_a_user_error(project):
    (project / "data/prepared/test.npz").write_bytes(b"not an npz")
    with pytest.raises(UserError, match=r"data/prepared/test.npz: unreadable"):
        ambiguous.main()
