"""Captions of SynthVVI tracklets, their closed vocabulary and attribute probes.

A caption is built from the identity's attributes with one fixed template::

    a [short|tall] [slim|broad] person with <hair>[, <accessory>...] and <last>,
    wearing a [thin|thick] <colour> <pattern> top with <short|long> sleeves,
    <colour> <trousers|shorts> | a <colour> skirt and <colour> <sneakers|boots>

for example ``a tall person with long black hair and a backpack, wearing a thick
red striped top with long sleeves, black trousers and white sneakers``. The
**infrared** caption is the same sentence with every colour word removed
(hair, garments, shoes): colour is invisible in infrared, while pattern words
stay, because stripes, checks and logos show faintly there (see ``render``).

Captions are lowercase words separated by single spaces; the only punctuation
is a comma glued to the preceding word. :func:`tokenize_caption` splits a
caption into words and ``","`` tokens; :func:`synthvvi_vocabulary` lists every
token that a caption or probe can contain (commas included).
"""

from __future__ import annotations

import re

from lsmrl.synth.identities import COLOUR_WORDS, PALETTE, IdentityAttributes

PATTERN_WORDS = {"plain": "plain", "stripes": "striped", "checks": "checked", "logo": "logo"}

_STRUCTURE_WORDS = (
    "a",
    "and",
    "person",
    "with",
    "without",
    "wearing",
    "hair",
    "top",
    "sleeves",
    "backpack",
    "bag",
    "hat",
    "short",
    "long",
    "tall",
    "slim",
    "broad",
    "thin",
    "thick",
    "trousers",
    "shorts",
    "skirt",
    "sneakers",
    "boots",
)


def tokenize_caption(caption: str) -> list[str]:
    """Words and commas of a caption, in order: ``"a, b"`` -> ``["a", ",", "b"]``."""
    return re.findall(r"[a-z]+|,", caption)


def _join(items: list[str]) -> str:
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def _words(*parts: str) -> str:
    return " ".join(part for part in parts if part)


def make_caption(attrs: IdentityAttributes, modality: str) -> str:
    """The caption of a tracklet of ``attrs`` in ``modality`` ("visible" or "infrared")."""
    if modality not in ("visible", "infrared"):
        raise ValueError(f"modality must be 'visible' or 'infrared', got {modality!r}")
    visible = modality == "visible"

    def colour(name: str) -> str:
        return name if visible else ""

    body = attrs.body
    subject = _words(
        "a",
        body.height if body.height != "medium" else "",
        body.build if body.build != "average" else "",
        "person",
    )
    with_items = [_words(attrs.hair.length, colour(attrs.hair.colour), "hair")]
    acc = attrs.accessories
    with_items += [f"a {name}" for name, present in (("backpack", acc.backpack), ("bag", acc.bag), ("hat", acc.hat)) if present]

    level = attrs.thermal.upper_level
    upper = _words(
        "a",
        level if level != "medium" else "",
        colour(attrs.upper.colour),
        PATTERN_WORDS[attrs.upper.pattern],
        "top with",
        attrs.upper.sleeves,
        "sleeves",
    )
    lower = _words("a" if attrs.lower.kind == "skirt" else "", colour(attrs.lower.colour), attrs.lower.kind)
    shoes = _words(colour(attrs.shoes.colour), attrs.shoes.kind)
    return f"{subject} with {_join(with_items)}, wearing {upper}, {lower} and {shoes}"


def caption_clauses(caption: str) -> tuple[str, list[str], list[str]]:
    """Split a caption of :func:`make_caption`'s template into (subject, "with" items, "wearing" items):
    ``"a tall person with long hair and a bag, wearing a plain top with long sleeves, trousers and boots"`` ->
    ``("a tall person", ["long hair", "a bag"], ["a plain top with long sleeves", "trousers", "boots"])``."""
    head, separator, worn = caption.partition(", wearing ")
    subject, with_separator, carried = head.partition(" with ")
    if not separator or not with_separator:
        raise ValueError(f"not a SynthVVI caption (no 'with ...' and ', wearing ...'): {caption!r}")

    def items(text: str) -> list[str]:
        before, _, last = text.rpartition(" and ")
        return (before.split(", ") if before else []) + [last]

    return subject, items(carried), items(worn)


def drop_clauses(caption: str, probability: float, rng) -> str:
    """The caption with each "with" and "wearing" item left out with ``probability`` (at least one item of each
    kind stays): clause dropout, so that pretraining cannot memorise captions as whole strings while every
    remaining word stays true of the person. ``rng``: a numpy Generator."""
    if probability <= 0:
        return caption
    subject, carried, worn = caption_clauses(caption)

    def keep(items: list[str]) -> list[str]:
        kept = [item for item in items if rng.random() >= probability]
        return kept or [items[int(rng.integers(len(items)))]]

    return f"{subject} with {_join(keep(carried))}, wearing {_join(keep(worn))}"


def synthvvi_vocabulary() -> list[str]:
    """Every token a caption or probe can contain (sorted words, then ``","``)."""
    words = set(_STRUCTURE_WORDS) | set(PATTERN_WORDS.values()) | set(COLOUR_WORDS)
    return sorted(words) + [","]


def attribute_probes() -> dict[str, tuple[str, str]]:
    """Pairs of captions (with the attribute, without it) for probing what a text/visual model encodes.

    Colour probes (``"<colour> top"``) are only meaningful for visible inputs; the
    others (accessories, pattern, sleeves, thickness, hair length, lower garment,
    shoes, height, build) apply to both modalities.
    """
    probes: dict[str, tuple[str, str]] = {}
    for item in ("backpack", "bag", "hat"):
        probes[item] = (f"a person with a {item}", f"a person without a {item}")
    for name in PALETTE:
        probes[f"{name} top"] = (f"a person wearing a {name} top", "a person wearing a top")
    for pattern in ("striped", "checked", "logo"):
        probes[f"{pattern} top"] = (f"a person wearing a {pattern} top", "a person wearing a plain top")
    probes["long sleeves"] = ("a person wearing a top with long sleeves", "a person wearing a top with short sleeves")
    probes["thick top"] = ("a person wearing a thick top", "a person wearing a thin top")
    probes["long hair"] = ("a person with long hair", "a person with short hair")
    probes["skirt"] = ("a person wearing a skirt", "a person wearing trousers")
    probes["shorts"] = ("a person wearing shorts", "a person wearing trousers")
    probes["boots"] = ("a person wearing boots", "a person wearing sneakers")
    probes["tall"] = ("a tall person", "a short person")
    probes["broad"] = ("a broad person", "a slim person")
    return probes


def probe_truth(attributes: dict, key: str) -> bool | None:
    """Whether an identity (its ``to_dict()`` form, as in synthvvi.json) has probe ``key``'s attribute.

    ``None`` when the identity is neither positive nor negative for a two-sided
    probe (e.g. ``"tall"`` for a medium-height person, ``"skirt"`` for shorts).
    """
    upper, lower, body = attributes["upper"], attributes["lower"], attributes["body"]
    if key in ("backpack", "bag", "hat"):
        return bool(attributes["accessories"][key])
    if key.endswith(" top") and key[:-4] in PALETTE:
        return upper["colour"] == key[:-4]
    if key in ("striped top", "checked top", "logo top"):
        pattern = {"striped top": "stripes", "checked top": "checks", "logo top": "logo"}[key]
        if upper["pattern"] == pattern:
            return True
        return False if upper["pattern"] == "plain" else None
    if key == "long sleeves":
        return upper["sleeves"] == "long"
    if key == "thick top":
        level = attributes["thermal"]["upper_level"]
        return None if level == "medium" else level == "thick"
    if key == "long hair":
        return attributes["hair"]["length"] == "long"
    if key in ("skirt", "shorts"):
        if lower["kind"] == key:
            return True
        return False if lower["kind"] == "trousers" else None
    if key == "boots":
        return attributes["shoes"]["kind"] == "boots"
    if key == "tall":
        return None if body["height"] == "medium" else body["height"] == "tall"
    if key == "broad":
        return None if body["build"] == "average" else body["build"] == "broad"
    raise KeyError(f"unknown probe {key!r}; see attribute_probes()")


__all__ = [
    "COLOUR_WORDS",
    "attribute_probes",
    "caption_clauses",
    "drop_clauses",
    "make_caption",
    "probe_truth",
    "synthvvi_vocabulary",
    "tokenize_caption",
]
