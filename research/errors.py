"""Errors a user can fix (a missing dataset, a broken archive, an unknown config or key), and the
command-line guard that turns them into one line naming the problem and the fix, exit status 2."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable


class UserError(Exception):
    """A problem with what the user gave or has (not a bug): its message says what to do."""


class ConfigError(UserError, ValueError):
    """An unknown config, profile, run or config key."""


def cli(main: Callable[[], None]) -> Callable[[], None]:
    """Run a script's ``main``; a UserError ends in ``error: <message>`` on stderr and exit 2."""

    @functools.wraps(main)
    def guarded() -> None:
        try:
            main()
        except UserError as error:
            print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
            raise SystemExit(2) from None

    return guarded
