"""``python tools/space.py export``: assemble the Hugging Face Space bundle, list it, or push it.

    python tools/space.py export --out build/space --dry-run   # what would be uploaded, with sizes and storage
    python tools/space.py export --out build/space             # write the folder (run the app inside it)
    HF_HUB_OFFLINE=0 HF_TOKEN=hf_... python tools/space.py export --out build/space --push OWNER/NAME
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __name__ == "__main__":  # `python tools/space.py`: the checkout's root on the path, for app, lsmrl and tools
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.command import run_command
from tools.space_bundle import SDKS, SpaceBundleError, format_plan, plan_bundle, write_bundle
from tools.space_hub import check_push, push_bundle

#: The checkout this tool lies in (``tools/`` sits at its root).
SOURCE_ROOT = Path(__file__).resolve().parents[1]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="space_command", metavar="<action>", required=True)
    export = sub.add_parser("export", help="assemble the Space bundle (and optionally push it)",
                            description="Assemble exactly what the Space needs in --out, with a .gitattributes "
                                        "that routes every binary to the Hub's large-file storage.")
    export.add_argument("--out", required=True, help="the bundle folder (new, empty, or a bundle written before)")
    export.add_argument("--dry-run", action="store_true",
                        help="list what would be written and uploaded (storage, size, path); write nothing")
    export.add_argument("--push", metavar="OWNER/NAME", default=None,
                        help="after writing, upload the folder to this Space with huggingface_hub "
                             "(token from HF_TOKEN; needs HF_HUB_OFFLINE=0)")
    export.add_argument("--sdk", choices=SDKS, default="gradio",
                        help="gradio (default: the Hub installs requirements.txt and runs app/main.py) or docker "
                             "(the bundle's Dockerfile builds the image)")
    export.add_argument("--prune", action="store_true",
                        help="with --push: delete the Space's files that are not in the bundle")
    export.add_argument("--private", action="store_true",
                        help="with --push: create the Space as private (an existing Space keeps its visibility)")
    export.add_argument("--source", default=str(SOURCE_ROOT), help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    if (args.prune or args.private) and not args.push:
        raise SpaceBundleError("--prune and --private apply to a push: add --push OWNER/NAME")
    if args.push:  # a bad Space name, no token or offline mode: said before anything is written
        check_push(args.push)
    plan = plan_bundle(args.source, sdk=args.sdk)
    if args.dry_run:
        print(format_plan(plan))
        target = f"to the Space {args.push}" if args.push else f"into {args.out}"
        print(f"dry run: nothing written, nothing uploaded (would write {target})")
        return 0
    out = write_bundle(plan, args.out)
    summary = plan.summary()
    print(f"wrote {summary['files']} files ({summary['bytes'] / 2**20:.1f} MiB) to {out}; "
          f"{summary['lfs_files']} go to large-file storage. Try it: cd {out} && python app/main.py")
    if args.push:
        url = push_bundle(out, args.push, plan, prune=args.prune, private=args.private or None)
        print(f"pushed: {url}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_command("python tools/space.py", __doc__, add_arguments, run, argv)

if __name__ == "__main__":
    sys.exit(main())
