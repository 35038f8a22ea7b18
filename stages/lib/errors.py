"""How a stage fails on a user's mistake: one clear line and a non-zero exit, never a traceback.

Bad input (a corrupt file, a wrong parameter, an unreachable mirror) is the user's to fix, so the
message must name the file or parameter and what is wrong. Bugs in our own code still raise
normally: a traceback is the right report for those.
"""

import sys
from collections.abc import Callable


class UserError(Exception):
    """A problem with the user's input or environment; its message is shown as a single line."""


def run_stage(main: Callable[[], None]) -> None:
    """Runs a stage's `main`, turning a `UserError` into `error: <message>` and exit status 1."""
    try:
        main()
    except UserError as error:
        message = " ".join(str(error).split())
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(1) from None
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        raise SystemExit(130) from None
