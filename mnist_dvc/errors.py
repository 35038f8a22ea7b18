"""How a stage fails on a user's mistake: one clear line and a non-zero exit, never a traceback.

Bad input (a corrupt file, a wrong parameter, an unreachable mirror) is the user's to fix, so the
message must name the file or parameter and what is wrong. Bugs in our own code still raise
normally: a traceback is the right report for those.
"""

import os
import sys
from collections.abc import Callable
from pathlib import Path


class UserError(Exception):
    """A problem with the user's input or environment; its message is shown as a single line."""


def read_user_file(path: str | os.PathLike, name: str | None = None) -> bytes:
    """The bytes of a file the user gave; `UserError` naming it (`name`, else the path) when it is
    missing or unreadable."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise UserError(f"{name or path}: not found") from None
    except OSError as error:
        raise UserError(f"{name or path}: cannot be read: {error.strerror or error}") from None


def one_line(message: object) -> str:
    """`message` as text on one line: every run of whitespace, line breaks included, becomes one
    space. A message may quote a file or a library's multi-line text, but a report of it (a stage's
    or mnist-dvc's `error:` line, the web page's JSON) must stay one line."""
    return " ".join(str(message).split())


def run_stage(main: Callable[[], None]) -> None:
    """Runs a stage's `main`, turning a `UserError` into `error: <message>` and exit status 1."""
    try:
        main()
    except UserError as error:
        print(f"error: {one_line(error)}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
