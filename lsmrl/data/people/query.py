"""One call from an uploaded clip to the model's query frames: the clip itself, or one person's crops."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from lsmrl.data.people.crops import crop_track
from lsmrl.data.people.finder import AUTO, detect_people, is_person_crop, select_track
from lsmrl.data.people.modality import check_declared_modality
from lsmrl.data.people.records import DetectionConfig, PersonTrack


@dataclass(frozen=True)
class PersonQuery:
    """What a video query will use.

    ``frames``: (n, H, W, 3) uint8: the chosen person's crops (``size``), or the
    clip unchanged when it already is a person crop (then ``person`` is None and
    ``tracks`` is empty). ``modality_warning``: the warnings for the user in
    words, or None: the sentence of :func:`check_declared_modality`, then
    ``person_warning`` (the app shows this one field). ``person_warning``: a
    sentence when the chosen track looks like more than one person
    (:attr:`PersonTrack.looks_mixed`), or None.
    """

    frames: np.ndarray
    person: PersonTrack | None
    tracks: tuple[PersonTrack, ...]
    modality_warning: str | None
    person_warning: str | None = None

    @property
    def used_whole_clip(self) -> bool:
        return self.person is None


def person_query(
    frames: np.ndarray,
    person: int | str = AUTO,
    declared: str | None = None,
    size: tuple[int, int] = (128, 64),
    margin: float = 0.1,
    config: DetectionConfig = DetectionConfig(),
    tracks: Sequence[PersonTrack] | None = None,
    is_crop: bool | None = None,
) -> PersonQuery:
    """The query frames for ``person`` (a track id, or ``"auto"``) in ``frames``.

    With ``"auto"``, a clip that is already a person crop (:func:`is_person_crop`)
    is used whole, as before person detection; otherwise the longest track is
    used (the longest that does not look mixed). A track id always uses tracks: ``tracks`` when given (those that
    :func:`detect_people` returned for these same frames, e.g. from an earlier
    preview), else a fresh detection. ``is_crop``: :func:`is_person_crop` of these same frames when the
    caller has it already (it runs HOG on upscaled frames: an app asked again about the same upload need not
    repeat it). Raises
    :class:`~lsmrl.data.people.NoPersonFoundError` or
    :class:`~lsmrl.data.people.UnknownPersonError` with a message for the user.
    """
    warning = check_declared_modality(frames, declared) if declared is not None else None
    auto = isinstance(person, str) and person.strip().lower() == AUTO
    if auto and (is_person_crop(frames, config) if is_crop is None else is_crop):
        return PersonQuery(np.asarray(frames), None, (), warning)
    if tracks is None:
        tracks = detect_people(frames, config)
    chosen = select_track(tracks, person)
    person_warning = mixed_track_warning(chosen)
    combined = " ".join(w for w in (warning, person_warning) if w) or None
    return PersonQuery(crop_track(frames, chosen, size, margin), chosen, tuple(tracks), combined, person_warning)


def mixed_track_warning(track: PersonTrack) -> str | None:
    """A sentence for the user when ``track`` looks like more than one person, else None."""
    if not track.looks_mixed:
        return None
    return (
        f"Person {track.id} may be more than one person: {track.appearance_outliers:.0%} of the detections "
        "along the track differ in colour from the rest (people crossing, or a group seen as one). The query "
        "would mix them; choose another person, or upload a clip cropped to one person."
    )
