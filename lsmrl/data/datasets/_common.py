"""Helpers shared by the readers: layout errors, index files, frame existence checks."""

from __future__ import annotations

import os
from pathlib import Path

from lsmrl.errors import DatasetLayoutError


def layout_error(problem: str, dataset: str, tree: str, hint: str = "") -> DatasetLayoutError:
    """A :class:`DatasetLayoutError` whose message says what is wrong, the assumed ``--dataset`` and its layout."""
    message = f"{problem}\n\nAssumed --dataset {dataset}. Expected layout:\n{tree.rstrip()}"
    if hint:
        message += f"\n{hint}"
    return DatasetLayoutError(message)


def check_root(root: str | os.PathLike, dataset: str, tree: str) -> Path:
    """``root`` as a Path; it must exist and be a folder."""
    path = Path(root).expanduser()
    if not path.exists():
        raise layout_error(f"data root {path} does not exist", dataset, tree)
    if not path.is_dir():
        raise layout_error(f"data root {path} is a file, not a folder", dataset, tree)
    return path


def require_file(path: Path, dataset: str, tree: str, hint: str = "") -> Path:
    if not path.is_file():
        raise layout_error(f"missing file: {path}", dataset, tree, hint)
    return path


def read_lines(path: Path, dataset: str, tree: str, keep_blank: bool = False) -> list[str]:
    """The lines of an index file (stripped; trailing blank lines removed). An empty file is an error."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise layout_error(f"index file {path} is not a UTF-8 text file", dataset, tree) from None
    lines = [line.strip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    if not keep_blank:
        lines = [line for line in lines if line]
    if not lines:
        raise layout_error(f"index file {path} is empty", dataset, tree)
    return lines


class FrameChecker:
    """Checks that frame files exist, listing each folder once (fast on large data sets)."""

    def __init__(self) -> None:
        self._listings: dict[str, frozenset[str]] = {}
        self.num_checked = 0
        self.missing: list[tuple[str, str]] = []  # (path, where it was listed)

    def _listing(self, folder: str) -> frozenset[str]:
        listing = self._listings.get(folder)
        if listing is None:
            try:
                listing = frozenset(os.listdir(folder))
            except (FileNotFoundError, NotADirectoryError, PermissionError):
                listing = frozenset()
            self._listings[folder] = listing
        return listing

    def check(self, paths, where: str) -> None:
        for path in paths:
            self.num_checked += 1
            folder, name = os.path.split(path)
            if name not in self._listing(folder):
                self.missing.append((path, where))

    def raise_if_missing(self, dataset: str, tree: str, hint: str = "") -> None:
        if not self.missing:
            return
        first, where = self.missing[0]
        count = len(self.missing)
        problem = (
            f"{count} of {self.num_checked} frame files listed in the index files are missing; "
            f"first missing: {first} (listed in {where})"
        )
        if count == self.num_checked:
            problem += "\nNone of the frames exist: is --data-root the folder shown as <root> below?"
        raise layout_error(problem, dataset, tree, hint)
