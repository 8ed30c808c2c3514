"""Finding people in a video query: detection, tracking, crops, a preview and a modality check.

An uploaded query may be a whole scene (a street, a corridor) with several
people; the model expects one person's crops. This package finds them offline:

- **Detection** per frame: OpenCV's HOG + linear-SVM people detector (Dalal &
  Triggs 2005; the model ships inside the opencv wheel, no download), and, for
  static cameras, MOG2 background subtraction whose person-shaped foreground
  blobs join HOG's boxes through non-maximum suppression; a blob too wide for
  one person is cut into person-shaped boxes at the valleys between heads, or
  dropped.
- **Tracking**: ByteTrack (``supervision``) links boxes over frames (Kalman
  constant-velocity prediction, Hungarian matching on IoU); a person hidden in
  a merged motion blob keeps their track through weak "guided" boxes at the
  predicted position, and a track's ends are carried on through such blobs;
  gaps between detections are bridged by linear interpolation; a track is
  cut where its colours change (HSV histograms, a change point), pieces of one
  person lost in a crossing are joined again when the later one starts where
  the earlier was heading and looks the same, and a track whose colours still
  vary "looks mixed"; tracks sorted longest first, ids from 1.
- :func:`person_query` does it all for a video query: the clip itself when it
  already is a person crop, else the chosen person's crops (``"auto"``: the
  longest track that does not look mixed), plus warnings in words: the
  modality check's and one when the chosen track looks like several people.
- :func:`crop_track` gives the chosen person's crops with a margin, padded to the
  model's 2:1 aspect and resized; :func:`preview_image` draws every track with a
  readable label; :func:`is_person_crop` recognises a clip that is already a
  person crop (used whole, as before); :func:`check_declared_modality` warns when
  a colour clip is declared infrared or a grey one visible;
  :func:`compose_scene` builds test scenes with known boxes from person clips.

Limits (what to expect from a 2005 detector):

- HOG finds upright, mostly unoccluded people about 100 px tall or more at
  detection resolution (long side 480-800 px): small or distant people,
  sitting or crowded ones, and people cut by the frame edge are often missed.
  It also fires on some person-like clutter; tracks need
  ``min_track_detections`` detections, which removes most one-frame hits.
- Background subtraction helps only with a static camera and people who move
  during the clip; a moving camera (most pixels foreground) switches it off.
  Someone who stands still for much of the clip becomes background and leaves
  a "ghost" blob when they go; tracks of blobs alone that never move are
  dropped, but a ghost that changes shape can remain as a short extra track.
- Tracking by overlap and constant-velocity prediction, checked by colour:
  two people who cross while turning or changing speed, or whose clothes look
  alike, may swap ids; a person who leaves and comes back (longer than
  ``relink_max_gap`` scanned frames) becomes a new track; two people who
  enter already overlapping and stay so are one blob, and often one track.
- Only ``max_scan_frames`` evenly spaced frames are searched; boxes of the
  frames between are interpolated.

The modality check only looks at colour: a thermal video shown with a
false-colour palette is "colour", a black-and-white visible camera is "grey".
"""

from lsmrl.data.people.crops import crop_box, crop_track, preview_frame_index, preview_image, track_colour
from lsmrl.data.people.finder import AUTO, detect_people, is_person_crop, scan_frame_indices, select_track
from lsmrl.data.people.modality import ChannelSpread, channel_spread, check_declared_modality
from lsmrl.data.people.query import PersonQuery, person_query
from lsmrl.data.people.records import (
    Box,
    DetectionConfig,
    NoPersonFoundError,
    PersonDetectionError,
    PersonTrack,
    UnknownPersonError,
)
from lsmrl.data.people.scene import Walker, compose_scene, textured_background

__all__ = [
    "AUTO",
    "Box",
    "ChannelSpread",
    "DetectionConfig",
    "NoPersonFoundError",
    "PersonDetectionError",
    "PersonQuery",
    "PersonTrack",
    "UnknownPersonError",
    "Walker",
    "channel_spread",
    "check_declared_modality",
    "compose_scene",
    "crop_box",
    "crop_track",
    "detect_people",
    "is_person_crop",
    "person_query",
    "preview_frame_index",
    "preview_image",
    "scan_frame_indices",
    "select_track",
    "textured_background",
    "track_colour",
]
