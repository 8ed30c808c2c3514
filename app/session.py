"""The per-session state: the one current query that every tab and control follows.

A session's state is a plain dict (a ``gr.State`` value, so it must be
deep-copyable and JSON-friendly), made and changed only by the functions here:

* ``kind``: ``"tracklet"`` (a test tracklet), ``"video"`` (an uploaded clip) or
  None (nothing retrieved yet, or the last attempt failed);
* ``query``: the tracklet id (tracklet queries only); ``video``: the uploaded
  file's name, its declared modality and the person used (video queries only);
* ``direction``, ``top_k``; ``items``: the ranked tracklet ids shown;
  ``match`` / ``match_rank``: the result chosen for the Attention tab;
* ``thumbnails``: the tracklet ids of the query thumbnails on show.

Why one dict: the Retrieval controls, the selected-match line, the Attention,
Prompt diffusion and Modality gap tabs all read the same value, so after a new
query (or a failed one) none of them can still show the previous query.
"""

from __future__ import annotations

from typing import Any

KINDS = ("tracklet", "video")


def new_session(direction: str = "infrared_to_visible") -> dict:
    """A session with no query yet."""
    return {"direction": direction, "kind": None, "query": None, "video": None, "items": [], "match": None,
            "match_rank": None, "top_k": 10, "thumbnails": []}


def _copy(session: dict | None, direction: str | None = None) -> dict:
    out = new_session(direction or (session or {}).get("direction") or "infrared_to_visible")
    out.update({key: value for key, value in (session or {}).items() if key in out})
    return out


def with_tracklet(session: dict | None, result: dict, top_k: int) -> dict:
    """The session after ranking the test tracklet ``result["query"]`` (a ``/retrieve`` result)."""
    out = _copy(session, result["direction"])
    items = [item["tid"] for item in result["items"]]
    out.update(kind="tracklet", query=result["query"]["tid"], video=None, top_k=int(top_k), items=items,
               match=items[0] if items else None, match_rank=1 if items else None)
    return out


def with_video(session: dict | None, result: dict, top_k: int, name: str, modality: str,
               person: Any = None) -> dict:
    """The session after ranking an uploaded clip (a ``/retrieve_video`` result)."""
    out = _copy(session, result["direction"])
    items = [item["tid"] for item in result["items"]]
    out.update(kind="video", query=None, video={"name": name, "modality": modality, "person": person},
               top_k=int(top_k), items=items, match=items[0] if items else None, match_rank=1 if items else None)
    return out


def tracklet_query(session: dict | None) -> str:
    """The session's current test tracklet ("" when the query is a video, or there is none)."""
    session = session or {}
    return str(session.get("query") or "") if session.get("kind") == "tracklet" else ""


def cleared(session: dict | None, direction: str | None = None) -> dict:
    """The session after a failed query: nothing is current, so no tab shows the previous one."""
    out = _copy(session, direction)
    out.update(kind=None, query=None, video=None, items=[], match=None, match_rank=None)
    return out


def with_match(session: dict | None, rank: int) -> dict:
    """The session with result ``rank`` (1-based) chosen as the match; unchanged if out of range."""
    out = _copy(session)
    if 1 <= int(rank) <= len(out["items"]):
        out.update(match=out["items"][int(rank) - 1], match_rank=int(rank))
    return out


def describe(session: dict | None) -> str:
    """The current query in words (Markdown)."""
    session = session or {}
    if session.get("kind") == "tracklet":
        return f"test tracklet `{session['query']}`"
    if session.get("kind") == "video":
        video = session.get("video") or {}
        person = video.get("person")
        return f"the uploaded video `{video.get('name')}`" + (f" (person {person})" if person is not None else "")
    return "no query"


def selected_match_note(session: dict | None) -> str:
    """The line under the results: which match the Attention tab explains (empty without a query)."""
    session = session or {}
    if not session.get("match"):
        return ""
    note = f"Selected match: `{session['match']}` (rank {session.get('match_rank')}) for {describe(session)}"
    if session.get("kind") == "video":
        return note + ". Attention maps need a test tracklet as the query, not an upload."
    return note + "; the Attention tab explains this pair."


__all__ = ["KINDS", "cleared", "describe", "new_session", "selected_match_note", "tracklet_query", "with_match",
           "with_tracklet",
           "with_video"]
