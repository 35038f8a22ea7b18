"""The named presets: each one's settings apply to params.yaml and give valid params."""

import shutil

import pytest

from bench.pipeline import override
from bench.presets import dvc_command, load_presets, preset_settings
from mnist_dvc.config.params import load_params


@pytest.mark.parametrize("name", sorted(load_presets()))
def test_every_preset_applies_to_params_yaml_and_validates(name, repo_root, tmp_path):
    params = tmp_path / "params.yaml"
    shutil.copy(repo_root / "params.yaml", params)
    override(params, preset_settings(name))
    train = load_params("train", params)
    for setting in preset_settings(name):
        key, value = setting.split("=", 1)
        section, field = key.split(".", 1)
        if section == "train" and "." not in field:
            assert str(getattr(train, field)) == value


def test_the_printed_command_is_a_dvc_experiment_with_every_setting():
    assert dvc_command("fast99") == "dvc exp run -n fast99 " + " ".join(f"-S {s}" for s in preset_settings("fast99"))


def test_an_unknown_preset_is_one_clear_line():
    with pytest.raises(SystemExit, match=r"presets.yaml: no preset 'fastest' \(choose one of .*fast99"):
        preset_settings("fastest")
