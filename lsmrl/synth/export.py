"""Export the test split of a generated SynthVVI tree (what the app ships under ``assets/synthvvi``).

The demo model is evaluated on the test identities of ``synth --seed 0``; this
copies exactly those files (``Test/``, the test index files, ``query_IDX.txt``,
empty train index files, and ``synthvvi.json`` restricted to the test split)
and writes ``MANIFEST.sha256`` so that :func:`verify_export` can check a copy
byte for byte.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
from pathlib import Path

from lsmrl.errors import DatasetLayoutError

MANIFEST = "MANIFEST.sha256"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export_test_split(source: str | Path, destination: str | Path) -> int:
    """Copy the test split of ``source`` to ``destination``; returns the number of files written."""
    source, destination = Path(source), Path(destination)
    info = source / "info"
    for needed in ("test_name.txt", "track_test_info.txt", "query_IDX.txt", "synthvvi.json"):
        if not (info / needed).is_file():
            raise DatasetLayoutError(f"{info / needed} is missing: export needs a tree written by `python -m lsmrl synth`")
    if destination.exists():
        shutil.rmtree(destination)
    shutil.copytree(source / "Test", destination / "Test")
    (destination / "info").mkdir(parents=True)
    for name in ("test_name.txt", "track_test_info.txt", "query_IDX.txt"):
        shutil.copyfile(info / name, destination / "info" / name)
    for name in ("train_name.txt", "track_train_info.txt"):
        (destination / "info" / name).write_text("")
    manifest = json.loads((info / "synthvvi.json").read_text())
    test_pids = {str(entry["pid"]) for entry in manifest["tracklets"]["test"]}
    manifest["tracklets"]["train"] = []
    manifest["identities"] = {pid: attrs for pid, attrs in manifest["identities"].items() if pid in test_pids}
    manifest["exported_from"] = "test split of " + json.dumps(manifest.get("args", {}), sort_keys=True)
    (destination / "info" / "synthvvi.json").write_text(json.dumps(manifest, sort_keys=True, indent=1) + "\n")
    files = sorted(p for p in destination.rglob("*") if p.is_file())
    lines = [f"{_sha256(p)}  {p.relative_to(destination).as_posix()}" for p in files]
    (destination / MANIFEST).write_text("\n".join(lines) + "\n")
    return len(files) + 1


def verify_export(root: str | Path) -> list[str]:
    """Paths whose content differs from ``MANIFEST.sha256`` (missing files included); empty = intact."""
    root = Path(root)
    manifest = root / MANIFEST
    if not manifest.is_file():
        raise DatasetLayoutError(f"{manifest} is missing: not an exported SynthVVI split")
    bad = []
    for line in manifest.read_text().splitlines():
        digest, relative = line.split("  ", 1)
        path = root / relative
        if not path.is_file() or _sha256(path) != digest:
            bad.append(relative)
    return bad


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", required=True, help="a tree written by `python -m lsmrl synth`")
    parser.add_argument("--out", required=True, help="destination, e.g. assets/synthvvi")
    parser.add_argument("--verify", action="store_true", help="only check --out against its manifest")


def run(args: argparse.Namespace) -> int:
    if args.verify:
        bad = verify_export(args.out)
        print("intact" if not bad else f"{len(bad)} files differ from the manifest, e.g. {bad[:5]}")
        return 0 if not bad else 1
    count = export_test_split(args.source, args.out)
    print(f"exported the test split of {args.source} to {args.out} ({count} files)")
    return 0
