"""Command-line interface: ``python -m lsmrl <command> [--help]``.

Each command lives in its own module, which exposes ``add_arguments(parser)``
and ``run(args) -> int``. Modules are imported only when their command runs, so
``--help`` stays fast and a heavy import (umap, gradio) never slows another command.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from lsmrl.errors import LSMRLError

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("lsmrl.data.synth.cli", "generate the SynthVVI data set (HITSZ-VCM layout)"),
    "stats": ("lsmrl.data.cli", "print the statistics table of a VVI-ReID data set"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lsmrl",
        description="LSMRL Explorer: video-based visible-infrared person re-identification.",
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(command_parser)
        command_parser.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    try:
        return int(args._run(args) or 0)
    except LSMRLError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
