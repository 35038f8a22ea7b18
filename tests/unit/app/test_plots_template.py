"""The page template of `dvc plots show` (mnist_dvc/app/plots_template.py): the committed one is what
the generator writes, DVC can fill it, and a stale one or a missing setting is one line. (The charts
drawing offline in a real browser: tests/e2e/test_offline_plots.py.)"""

import re
import shutil
import subprocess
import sys

import pytest
from dvc_render.html import HTML

from mnist_dvc.app.plots_template import COMMAND, main, template_path, versions
from mnist_dvc.errors import run_stage


def test_the_committed_template_is_what_the_generator_writes(repo_root):
    result = subprocess.run([sys.executable, "-m", "mnist_dvc.app.plots_template", "--check"], cwd=repo_root,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{result.stderr}the committed template is stale: run `{COMMAND}`"


def test_the_committed_template_is_one_dvc_fills_with_every_script_inline(repo_root, monkeypatch):
    monkeypatch.chdir(repo_root)
    template = template_path().read_text(encoding="utf-8")
    page = HTML(template).with_element("<div id='chart'></div>").embed()  # DVC's own filling; raises without {plot_divs}
    assert "<div id='chart'></div>" in page
    assert "{refresh_tag}" in template and "{scripts}" not in template  # {scripts} is where DVC's CDN tags would go
    assert '<meta charset="utf-8">' in template  # the bundle is not ASCII
    assert re.search(r"<script[^>]*\ssrc=", page) is None
    assert f"`{COMMAND}`: {versions()}." in template.splitlines()[1]


def test_the_docs_name_the_libraries_the_template_holds(repo_root):
    assert versions() in (repo_root / "docs/pipeline.md").read_text()


def test_a_stale_template_is_one_line_then_the_generator_rewrites_it(repo_root, tmp_path, monkeypatch, capsys):
    (tmp_path / ".dvc").mkdir()
    shutil.copy(repo_root / ".dvc/config", tmp_path / ".dvc/config")
    monkeypatch.chdir(tmp_path)
    path = template_path()
    path.write_text("<html>{plot_divs}</html>")
    with pytest.raises(SystemExit) as exit_status:
        run_stage(lambda: main(["--check"]))
    assert exit_status.value.code == 1
    assert capsys.readouterr().err == f"error: {path} is not what `{COMMAND}` writes now: run it\n"

    main([])
    assert path.read_bytes() == (repo_root / path).read_bytes()


@pytest.mark.parametrize("config, message", [
    (None, "not found; run `python -m mnist_dvc.app.plots_template` from the project root"),
    ("[core]\n    autostage = true\n", "plots.html_template is not set; set it with `dvc config plots.html_template <file in .dvc/>`"),
    ("[plots]\n    html_template = /tmp/page.html\n", "plots.html_template is /tmp/page.html, an absolute path; give one relative to .dvc/ for every clone"),
])
def test_a_missing_or_absolute_setting_is_one_line_naming_the_config(tmp_path, monkeypatch, capsys, config, message):
    (tmp_path / ".dvc").mkdir()
    if config is not None:
        (tmp_path / ".dvc/config").write_text(config)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_status:
        run_stage(lambda: main([]))
    assert exit_status.value.code == 1
    assert capsys.readouterr().err == f"error: .dvc/config: {message}\n"
