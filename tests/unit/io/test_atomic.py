"""Atomic writes: an output appears complete or not at all, with ordinary file modes."""

import os

import numpy as np
import pandas as pd
import pytest

from mnist_dvc.io.atomic import atomic_dir, atomic_path, save_npz, write_csv, write_json


def test_a_failed_write_leaves_nothing(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert list(tmp_path.iterdir()) == []


def test_a_failed_rewrite_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.json"
    write_json(target, {"good": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("{")
            raise RuntimeError
    assert target.read_text() == '{\n  "good": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_json_is_sorted_so_equal_results_give_equal_bytes(tmp_path):
    write_json(tmp_path / "a.json", {"b": 1, "a": 2})
    write_json(tmp_path / "b.json", {"a": 2, "b": 1})
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()


def test_folders_are_swapped_in_whole(tmp_path):
    target = tmp_path / "prepared"
    with atomic_dir(target) as folder:
        save_npz(folder / "x.npz", images=np.arange(3))
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as folder:
            (folder / "partial").write_text("x")
            raise RuntimeError
    assert [p.name for p in target.iterdir()] == ["x.npz"]
    assert [p.name for p in tmp_path.iterdir()] == ["prepared"]
    np.testing.assert_array_equal(np.load(target / "x.npz")["images"], np.arange(3))


def test_outputs_get_the_modes_of_plain_files(tmp_path):
    umask = os.umask(0)
    os.umask(umask)
    write_json(tmp_path / "m.json", {})
    with atomic_dir(tmp_path / "d"):
        pass
    assert (tmp_path / "m.json").stat().st_mode & 0o777 == 0o666 & ~umask
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o777 & ~umask


def test_a_table_is_written_as_csv_without_its_index(tmp_path):
    table = pd.DataFrame({"digit": [3, 7], "f1": [0.5, 1.0], "correct": [True, False]}, index=[10, 11])
    write_csv(tmp_path / "sub" / "t.csv", table)
    assert (tmp_path / "sub" / "t.csv").read_bytes() == b"digit,f1,correct\n3,0.5,True\n7,1.0,False\n"
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["t.csv"]  # no temporary file left behind


def test_an_empty_table_still_has_its_header(tmp_path):
    write_csv(tmp_path / "t.csv", pd.DataFrame(columns=["index", "label"]))
    assert (tmp_path / "t.csv").read_text() == "index,label\n"
