"""How a stage ends on a user's mistake: one `error:` line and exit status 1, never a traceback;
Ctrl-C is `error: interrupted` and 130; our own bugs still raise."""

import pytest

from mnist_dvc.errors import UserError, one_line, read_user_file, run_stage


def fails_with(error: BaseException):
    def main():
        raise error
    return main


def test_a_user_error_is_one_line_and_exit_status_1(capsys):
    with pytest.raises(SystemExit) as ended:
        run_stage(fails_with(UserError("params.yaml: train.epochs = 0:\n  must be\tat least 1")))
    assert ended.value.code == 1
    assert capsys.readouterr().err == "error: params.yaml: train.epochs = 0: must be at least 1\n"


def test_one_line_turns_every_run_of_whitespace_into_one_space():
    assert one_line("digits/a.png:\n  cannot be read:\tIs a directory\n") == "digits/a.png: cannot be read: Is a directory"
    assert one_line(UserError("fold 3:  diverged")) == "fold 3: diverged" and one_line("") == ""


def test_ctrl_c_is_reported_as_interrupted_with_status_130(capsys):
    with pytest.raises(SystemExit) as ended:
        run_stage(fails_with(KeyboardInterrupt()))
    assert ended.value.code == 130
    assert capsys.readouterr().err == "error: interrupted\n"


def test_a_bug_is_not_dressed_up_as_a_user_error(capsys):
    with pytest.raises(ZeroDivisionError):
        run_stage(lambda: 1 / 0)
    assert capsys.readouterr().err == ""


def test_a_stage_that_succeeds_prints_nothing_extra(capsys):
    run_stage(lambda: print("done"))
    assert capsys.readouterr() == ("done\n", "")


def test_a_user_file_that_is_missing_or_unreadable_is_named(tmp_path):
    (tmp_path / "digit.png").write_bytes(b"ink")
    assert read_user_file(tmp_path / "digit.png") == b"ink"
    with pytest.raises(UserError, match=rf"^{tmp_path / 'gone.png'}: not found$"):
        read_user_file(tmp_path / "gone.png")
    with pytest.raises(UserError, match=r"^upload: cannot be read: Is a directory$"):
        read_user_file(tmp_path, "upload")
