"""Readers shared by the Space tests (tests/test_space.py, tests/test_space_bundle.py): the README's front
matter, pins, the Dockerfile's instructions and Docker's .dockerignore rule, for any folder."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

import yaml


def front_matter(readme: Path) -> dict:
    """The YAML front matter of a README (asserts that it has one)."""
    text = Path(readme).read_text(encoding="utf-8")
    assert text.startswith("---\n"), f"{readme} must start with the Space's YAML front matter"
    block, rest = text[4:].split("\n---\n", 1)
    assert rest.lstrip().startswith("# LSMRL Explorer")
    return yaml.safe_load(block)


def requirement_pin(requirements: Path, name: str) -> str:
    """The exact ``name==X`` pin of a requirements file."""
    for line in Path(requirements).read_text().splitlines():
        match = re.match(rf"^\s*{re.escape(name)}\s*==\s*([^\s#;]+)", line, re.IGNORECASE)
        if match:
            return match.group(1)
    raise AssertionError(f"{name} is not pinned with == in {requirements}")


def dockerfile_instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    lines, current = [], ""
    for raw in Path(dockerfile).read_text().splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        lines.append(current)
        current = ""
    out = []
    for line in lines:
        instruction, _, args = line.partition(" ")
        out.append((instruction.upper(), args.strip()))
    return out


def dockerignore_excludes(path: str, dockerignore: Path) -> bool:
    """Docker's rule, simplified: a path is excluded when a pattern matches it or one of its parent folders
    (``*`` stays inside one path segment, ``**`` spans any number; no ``!`` patterns are used)."""
    patterns = [line.strip().rstrip("/") for line in Path(dockerignore).read_text().splitlines()
                if line.strip() and not line.strip().startswith("#")]
    assert not any(p.startswith("!") for p in patterns), "update this helper for exceptions"

    def match(pattern: list[str], parts: list[str]) -> bool:
        if not pattern:
            return not parts
        if pattern[0] == "**":
            return any(match(pattern[1:], parts[i:]) for i in range(len(parts) + 1))
        return bool(parts) and fnmatch.fnmatchcase(parts[0], pattern[0]) and match(pattern[1:], parts[1:])

    parts = path.split("/")
    return any(match(p.split("/"), parts[:n]) for p in patterns for n in range(1, len(parts) + 1))
