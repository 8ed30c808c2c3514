"""What the ``python tools/<tool>.py`` scripts share: the entry point of those with ``add_arguments`` and ``run``,
and writing a result JSON with the command that made it."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path

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


def write_result(result: dict, path: str | Path | None, tool: str, argv: list[str] | None) -> None:
    """Put the command line into ``result`` (``python tools/<tool> ...``) and write it as JSON to ``path``
    (nothing written when ``path`` is None)."""
    result["command"] = shlex.join(["python", f"tools/{tool}", *(argv if argv is not None else sys.argv[1:])])
    if path:
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {out}")
