"""The entry point every ``python tools/<tool>.py`` with ``add_arguments`` and ``run`` shares."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from lsmrl.errors import LSMRLError


def run_command(prog: str, doc: str | None, add_arguments: Callable[[argparse.ArgumentParser], None],
                run: Callable[[argparse.Namespace], int], argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run; an :class:`~lsmrl.errors.LSMRLError` becomes ``error: ...`` on stderr and exit 1."""
    parser = argparse.ArgumentParser(prog=prog, description=(doc or "").split("\n\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return int(run(args) or 0)
    except LSMRLError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
