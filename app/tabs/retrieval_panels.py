"""The Retrieval tab's text under and above the ranked list, made from a ``/retrieve`` result alone: the
summary, the first-true-match line and the per-stage panel (what STFL, SD, CMI and the final embedding did
to this query). Pure functions of the result dict, so the browser and the API say the same numbers."""

from __future__ import annotations

from app.tabs.shared import direction_label, num, other_modality


def ranked_summary(result: dict) -> str:
    """The summary of a tracklet query's ranking: who the query is, AP, INP and where its first true match is."""
    q = result["query"]
    head = (f"**Query** `{q['tid']}`: identity {q['pid']}, camera {q['camid']}, {q['modality']}, "
            f"ranked against the {other_modality(q['modality'])} gallery ({direction_label(result['direction'])}).")
    if result.get("first_match_rank") is None:
        return head + ("\n\nNo true match is left in the gallery after the camera rule, so the metric skips "
                       "this query (no AP).")
    top = result["items"][0] if result["items"] else None
    verdict = ("the top-1 is a true match" if top and top["is_match"] else
               f"the top-1 is identity {top['pid']} (wrong)" if top else "")
    matches = int(result["num_matches"])
    of = "the only true match" if matches == 1 else f"{matches} true matches"
    return (head + f"\n\n**AP** {num(result['ap'])} · **INP** {num(result['inp'])} · "
            f"**first true match at rank {result['first_match_rank']}** of {result.get('gallery_size', '?')} "
            f"gallery items ({of}); {verdict}.")


def true_match_line(result: dict | None) -> str:
    """The line under the ranked list: the first true match of the whole ranking, whatever top-k is."""
    if not result or "first_match" not in result:
        return ""
    first = result["first_match"]
    if first is None:
        return "**No true match** in this gallery after the camera rule: nothing to explain the query against."
    shown = len(result.get("items") or [])
    where = "in the list above" if first["rank"] <= shown else f"below the top {shown} shown"
    return (f"**First true match**: `{first['tid']}` at **rank {first['rank']}** of {result['gallery_size']} "
            f"({where}), similarity {first['similarity']:.3f} (identity {first['pid']}, camera {first['camid']}).")


def _signed(value: float | None) -> str:
    return "—" if value is None else f"{value:+.3f}"


def stage_panel(result: dict | None) -> str:
    """What each stage did to this query: the first true match's rank and the top impostor's margin when the
    gallery is ranked by each stage's features (``result["stages"]``, from
    :meth:`lsmrl.analysis.views.failures.FailureAnalysis.stage_ranks`)."""
    stages = (result or {}).get("stages")
    if not stages:
        return ""
    rows = ["| stage | true match rank | true match sim. | top impostor | impostor sim. | margin |",
            "|---|---:|---:|---|---:|---:|"]
    for s in stages:
        rank = "—" if s["first_match_rank"] is None else str(s["first_match_rank"])
        impostor = s["top_impostor_tid"] or "—"
        rows.append(f"| {s['label']} | {rank} | {num(s['first_match_similarity'])} | {impostor} | "
                    f"{num(s['top_impostor_similarity'])} | {_signed(s['margin'])} |")
    ranks = [s["first_match_rank"] for s in stages]
    moves = " → ".join("—" if r is None else str(r) for r in ranks)
    return ("#### What each stage did to this query\n"
            f"Rank of the first true match, stage by stage: **{moves}**. Each row ranks the same gallery with the "
            "same camera rule by the cosine similarity of that stage's features (*sim.*). *Margin*: the top "
            "impostor's similarity minus the first true match's; above 0 the impostor ranks above the true "
            "match, below 0 the true match leads.\n\n" + "\n".join(rows))


__all__ = ["ranked_summary", "stage_panel", "true_match_line"]
