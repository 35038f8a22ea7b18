"""The parameters page: docs/params.md is what `python -m mnist_dvc.config.params_doc` writes from the
schema and params.yaml, so a key documented in the schema is documented on the page, and nowhere else."""

import shutil

import pytest
import yaml

from mnist_dvc.config.params import Params, Section
from mnist_dvc.config.params_doc import COMMAND, is_section, main, render
from mnist_dvc.errors import run_stage


def schema_fields(schema: type[Section], prefix: str):
    """(dotted key, field) for every field of `schema` and of the sections nested in it."""
    for name, field in schema.model_fields.items():
        yield f"{prefix}{name}", field
        if is_section(field.annotation):
            yield from schema_fields(field.annotation, f"{prefix}{name}.")


def test_the_committed_page_is_what_the_generator_writes(repo_root):
    committed = (repo_root / "docs/params.md").read_text()
    assert committed == render(repo_root / "params.yaml"), f"docs/params.md is stale: run `{COMMAND}`"


def test_every_schema_key_is_on_the_page(repo_root):
    """A section as a heading, any other key as a table row."""
    page = (repo_root / "docs/params.md").read_text()
    for key, _ in schema_fields(Params, ""):
        assert (f"| `{key}` |" if "." in key else f"## `{key}`\n") in page, key


def test_every_key_of_params_yaml_is_described(repo_root):
    """A section by its class docstring (the page's intro to it), any other key by its field's description."""
    shipped = yaml.safe_load((repo_root / "params.yaml").read_text())
    fields = dict(schema_fields(Params, ""))

    def keys(node: dict, prefix: str = ""):
        for key, value in node.items():
            yield f"{prefix}{key}"
            if isinstance(value, dict):
                yield from keys(value, f"{prefix}{key}.")

    for key in keys(shipped):
        field = fields[key]
        if is_section(field.annotation):
            assert field.annotation.__doc__, f"{field.annotation.__name__} ({key}): no docstring"
        if "." in key:
            assert field.description, f"{key}: no description"


def test_check_is_one_line_naming_the_page_while_it_is_stale(repo_root, tmp_path, monkeypatch, capsys):
    shutil.copy(repo_root / "params.yaml", tmp_path / "params.yaml")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_status:
        run_stage(lambda: main(["--check"]))  # no page yet
    assert exit_status.value.code == 1
    assert capsys.readouterr().err == f"error: docs/params.md is out of date with mnist_dvc/config/params.py and params.yaml: run `{COMMAND}`\n"

    main([])
    main(["--check"])
    (tmp_path / "docs/params.md").write_text((tmp_path / "docs/params.md").read_text().replace("seconds", "minutes"))
    with pytest.raises(SystemExit):
        run_stage(lambda: main(["--check"]))
    assert "docs/params.md" in capsys.readouterr().err
