"""Push a Space bundle to the Hugging Face Hub with the Hub's own client.

Over HTTP, with no git history and no local git-lfs: the bundle's
``.gitattributes`` goes first, in a commit of its own, so that the Space's
rules send every binary to large-file storage; then ``HfApi.upload_folder``
sends the folder (with ``hf_xet``, a folder this large is committed in several
batches, and re-running the call resumes it). ``huggingface_hub`` comes with
gradio (``requirements.txt``); it is imported only when pushing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from tools.space_bundle import SDKS, BundlePlan, SpaceBundleError

#: Never uploaded, even if they appear in the folder after the export (running the app inside it writes these).
IGNORE_PATTERNS = ("*/__pycache__/*", "*.pyc", "cache/*", "tmp/*", ".gradio/*")
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


def hub_token(token: str | None = None) -> str:
    """``token``, else ``$HF_TOKEN``, else the token saved by ``hf auth login``; refuses in words when none."""
    token = token or os.environ.get("HF_TOKEN")
    if not token:
        from huggingface_hub import get_token

        token = get_token()
    if not token:
        raise SpaceBundleError("no Hugging Face token: set HF_TOKEN to a token with write access "
                               "(https://huggingface.co/settings/tokens) or run `hf auth login`; nothing was pushed")
    return token


def check_push(repo_id: str, token: str | None = None, *, online: bool = True) -> str:
    """Everything a push needs that can be checked before anything is written or sent; returns the token.

    ``online``: the real client will be used, which refuses to connect under ``HF_HUB_OFFLINE=1``.
    """
    if not _REPO_ID.match(repo_id or ""):
        raise SpaceBundleError(f"--push {repo_id!r}: give the Space as OWNER/NAME, e.g. your-name/lsmrl-explorer")
    token = hub_token(token)
    if online:
        from huggingface_hub import constants

        if constants.HF_HUB_OFFLINE:
            raise SpaceBundleError("HF_HUB_OFFLINE=1 is set, which the app wants but a push cannot work with: "
                                   "run the push with HF_HUB_OFFLINE=0; nothing was pushed")
    return token


def _check_folder_is_the_plan(folder: Path, plan: BundlePlan) -> None:
    """Refuses when the folder no longer holds exactly the exported files (apart from what running the app
    leaves): an added file could be a binary that the bundle's .gitattributes does not cover."""
    from huggingface_hub.utils import filter_repo_objects

    present = {p.relative_to(folder).as_posix(): p.stat().st_size for p in folder.rglob("*") if p.is_file()}
    kept = set(filter_repo_objects(present, ignore_patterns=list(IGNORE_PATTERNS)))
    expected = {f.path: f.size for f in plan.files}
    extra, missing = sorted(kept - set(expected)), sorted(set(expected) - kept)
    changed = sorted(p for p in kept & set(expected) if present[p] != expected[p])
    if extra or missing or changed:
        detail = "; ".join(f"{what}: {', '.join(paths[:3])}{' ...' if len(paths) > 3 else ''}"
                           for what, paths in (("added", extra), ("missing", missing), ("changed", changed)) if paths)
        raise SpaceBundleError(f"{folder} is not the bundle as exported ({detail}); export it again, then push; "
                               "nothing was pushed")


def push_bundle(folder: str | Path, repo_id: str, plan: BundlePlan, *, token: str | None = None,
                api: Any | None = None, prune: bool = False, private: bool | None = None) -> str:
    """Create the Space ``repo_id`` if needed and upload ``folder`` (written from ``plan``).

    ``prune`` deletes the Space's files that the bundle does not have (the README and
    ``.gitattributes`` are replaced, never deleted). Returns the Space's URL.
    """
    if plan.sdk not in SDKS:
        raise SpaceBundleError(f"unknown Space SDK {plan.sdk!r}")
    folder = Path(folder)
    if not (folder / ".gitattributes").is_file():
        raise SpaceBundleError(f"{folder} is not an exported bundle (no .gitattributes)")
    token = check_push(repo_id, token, online=api is None)
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    _check_folder_is_the_plan(folder, plan)
    api.create_repo(repo_id, repo_type="space", space_sdk=plan.sdk, exist_ok=True, private=private, token=token)
    summary = plan.summary()
    # The bundle's .gitattributes first, in a commit of its own, so that the Space's rules already route
    # every binary of the folder to large-file storage when the Hub sorts the folder's files.
    api.upload_file(path_or_fileobj=str(folder / ".gitattributes"), path_in_repo=".gitattributes",
                    repo_id=repo_id, repo_type="space", token=token,
                    commit_message="Large-file storage for every binary of the bundle (.gitattributes)")
    api.upload_folder(
        repo_id=repo_id, repo_type="space", folder_path=str(folder), token=token,
        allow_patterns=plan.allow_patterns(), ignore_patterns=list(IGNORE_PATTERNS),
        delete_patterns=["*"] if prune else None,
        commit_message="LSMRL Explorer Space bundle (python tools/space.py export)",
        commit_description=(f"{summary['files']} files; {summary['lfs_files']} binaries in large-file storage."),
    )
    return f"https://huggingface.co/spaces/{repo_id}"
