"""Identity attributes of SynthVVI: what a synthetic person looks like and how warm it is.

An identity is sampled once from its own random generator and then rendered by
several cameras in both modalities. The attributes split cleanly into

* geometry (body shape, hair length, garment kinds, sleeves, accessories, gait),
  which both renderers use,
* colours (garments, hair, skin, shoes, accessories), which only the
  **visible** renderer reads, and
* thermal properties (garment thickness, skin temperature), which only the
  **infrared** renderer reads.

Colours and thermal properties are sampled independently, so the infrared image
of a person carries no information about the colour of their clothes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

# Named garment palette (sRGB, 0..255). The names are the colour words of the captions.
PALETTE: dict[str, tuple[int, int, int]] = {
    "black": (32, 32, 36),
    "white": (232, 232, 226),
    "grey": (128, 128, 132),
    "red": (196, 36, 40),
    "blue": (38, 72, 186),
    "green": (40, 136, 62),
    "yellow": (228, 196, 44),
    "orange": (232, 118, 32),
    "purple": (118, 50, 148),
    "brown": (116, 74, 42),
}
HAIR_COLOURS: dict[str, tuple[int, int, int]] = {
    "black": (24, 22, 22),
    "brown": (92, 60, 34),
    "blonde": (206, 170, 96),
    "grey": (160, 160, 160),
}
SHOE_COLOURS: tuple[str, ...] = ("black", "white", "brown")
SKIN_TONES: tuple[tuple[int, int, int], ...] = (
    (241, 204, 176),
    (224, 172, 130),
    (190, 134, 96),
    (140, 92, 62),
    (96, 62, 44),
)

HEIGHTS = ("short", "medium", "tall")
BUILDS = ("slim", "average", "broad")
HAIR_LENGTHS = ("short", "long")
PATTERNS = ("plain", "stripes", "checks", "logo")
SLEEVES = ("short", "long")
LOWER_KINDS = ("trousers", "shorts", "skirt")
SHOE_KINDS = ("sneakers", "boots")
THICKNESS_LEVELS = ("thin", "medium", "thick")

# Every colour word that may appear in a visible caption (none may appear in an infrared one).
COLOUR_WORDS: frozenset[str] = frozenset(PALETTE) | frozenset(HAIR_COLOURS) | frozenset(SHOE_COLOURS)

# --- Near-infrared (about 850 nm) reflectance of every material, a fixed table [our choice].
# Textile dyes are mostly transparent in the NIR, so a garment's NIR grey follows its dye's (and fibre's)
# NIR reflectance, not its visible colour: many black dyes reflect NIR strongly (unlike carbon black), reds
# and oranges are bright, greens and greys are dark. The table is chosen so that the NIR grey is nearly
# uncorrelated with visible luminance across the palette: white, red and orange collapse to one light grey,
# black and purple to one mid grey, while red and brown (similar visible luminance) or blue and purple
# separate. ``tests/test_synth.py`` checks these properties.
NIR_REFLECTANCE: dict[str, float] = {
    "black": 0.62,
    "white": 0.80,
    "grey": 0.20,
    "red": 0.78,
    "blue": 0.35,
    "green": 0.25,
    "yellow": 0.45,
    "orange": 0.76,
    "purple": 0.60,
    "brown": 0.30,
}
HAIR_NIR: dict[str, float] = {"black": 0.30, "brown": 0.38, "blonde": 0.52, "grey": 0.45}
SHOE_NIR: dict[str, float] = {"black": 0.12, "white": 0.70, "brown": 0.40}  # rubber and leather
SKIN_NIR: tuple[float, ...] = (0.64, 0.62, 0.60, 0.57, 0.54)  # melanin absorbs far less at 850 nm than in visible light
ACCESSORY_NIR_FACTOR = 0.85  # coated nylon of bags, backpacks and hats reflects a little less than woven fabric


@dataclass(frozen=True)
class BodyShape:
    """Height and build. ``height_scale``/``width_scale`` are the continuous values behind the words."""

    height: str  # short / medium / tall
    height_scale: float  # relative body height (0.875 .. 1.065); crops are height-normalised, so it
    # shows as proportions: slimmer and longer-legged when tall
    leg_ratio: float  # relative leg length (tall people have slightly longer legs)
    build: str  # slim / average / broad
    width_scale: float  # relative shoulder and hip width
    head_scale: float  # relative head size
    skin_tone: int  # index into SKIN_TONES (visible only)


@dataclass(frozen=True)
class Hair:
    length: str  # short / long
    colour: str  # key of HAIR_COLOURS (visible only)


@dataclass(frozen=True)
class UpperGarment:
    colour: str  # key of PALETTE (visible only)
    pattern: str  # plain / stripes / checks / logo
    pattern_colour: str  # colour of stripes, checks or the logo (visible only)
    sleeves: str  # short / long
    pattern_period: float  # stripe/check period as a fraction of body height


@dataclass(frozen=True)
class LowerGarment:
    colour: str  # key of PALETTE (visible only)
    kind: str  # trousers / shorts / skirt


@dataclass(frozen=True)
class Shoes:
    colour: str  # one of SHOE_COLOURS (visible only)
    kind: str  # sneakers / boots


@dataclass(frozen=True)
class Accessories:
    backpack: bool
    bag: bool
    hat: bool
    backpack_colour: str  # key of PALETTE (visible only; sampled even when absent)
    bag_colour: str
    hat_colour: str


@dataclass(frozen=True)
class Gait:
    stride: float  # hip swing amplitude, radians
    cadence: float  # gait cycles per frame
    arm_swing: float  # shoulder swing amplitude, radians
    bounce: float  # vertical head bob, fraction of body height


@dataclass(frozen=True)
class Thermal:
    """What the infrared renderer reads besides geometry. Independent of every colour."""

    upper_thickness: float  # 0 (thin shirt) .. 1 (thick coat)
    upper_level: str  # thin / medium / thick (word for the caption)
    lower_thickness: float
    skin_temperature: float  # degrees Celsius of exposed skin

    @staticmethod
    def level(thickness: float) -> str:
        return THICKNESS_LEVELS[min(2, int(thickness * 3))]


@dataclass(frozen=True)
class IdentityAttributes:
    pid: int
    body: BodyShape
    hair: Hair
    upper: UpperGarment
    lower: LowerGarment
    shoes: Shoes
    accessories: Accessories
    gait: Gait
    thermal: Thermal

    @property
    def skin_exposure(self) -> float:
        """Share of the body surface that shows bare skin (a thermal summary for analysis)."""
        exposure = 0.09  # face and hands
        exposure += 0.12 if self.upper.sleeves == "short" else 0.0
        exposure += {"trousers": 0.0, "shorts": 0.16, "skirt": 0.2}[self.lower.kind]
        return exposure

    def to_dict(self) -> dict:
        """A JSON-ready dict (floats rounded to 4 decimals so the JSON file is stable)."""
        data = _round_floats(asdict(self))
        data["skin_exposure"] = round(self.skin_exposure, 4)
        return data


def _round_floats(value):
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {key: _round_floats(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_round_floats(item) for item in value]
    return value


def _choice(rng: np.random.Generator, options, p=None):
    return options[int(rng.choice(len(options), p=p))]


def sample_identity(rng: np.random.Generator, pid: int) -> IdentityAttributes:
    """Draw one identity. The order of draws is fixed, so the same generator state gives the same person."""
    palette_names = tuple(PALETTE)

    height = _choice(rng, HEIGHTS, p=[0.25, 0.5, 0.25])
    height_scale = {"short": 0.9, "medium": 0.97, "tall": 1.04}[height] + float(rng.uniform(-0.025, 0.025))
    leg_ratio = {"short": 0.97, "medium": 1.0, "tall": 1.04}[height] + float(rng.uniform(-0.02, 0.02))
    build = _choice(rng, BUILDS, p=[0.3, 0.4, 0.3])
    width_scale = {"slim": 0.82, "average": 1.0, "broad": 1.2}[build] + float(rng.uniform(-0.05, 0.05))
    body = BodyShape(
        height=height,
        height_scale=height_scale,
        leg_ratio=leg_ratio,
        build=build,
        width_scale=width_scale,
        head_scale=float(rng.uniform(0.92, 1.08)),
        skin_tone=int(rng.integers(len(SKIN_TONES))),
    )
    hair = Hair(
        length=_choice(rng, HAIR_LENGTHS, p=[0.65, 0.35]),
        colour=_choice(rng, tuple(HAIR_COLOURS), p=[0.5, 0.3, 0.14, 0.06]),
    )
    upper_colour = _choice(rng, palette_names)
    pattern_colour = _choice(rng, tuple(name for name in palette_names if name != upper_colour))
    upper = UpperGarment(
        colour=upper_colour,
        pattern=_choice(rng, PATTERNS, p=[0.4, 0.2, 0.2, 0.2]),
        pattern_colour=pattern_colour,
        sleeves=_choice(rng, SLEEVES, p=[0.45, 0.55]),
        pattern_period=float(rng.uniform(0.035, 0.06)),
    )
    lower = LowerGarment(
        colour=_choice(rng, palette_names),
        kind=_choice(rng, LOWER_KINDS, p=[0.6, 0.2, 0.2]),
    )
    shoes = Shoes(colour=_choice(rng, SHOE_COLOURS), kind=_choice(rng, SHOE_KINDS, p=[0.7, 0.3]))
    accessories = Accessories(
        backpack=bool(rng.random() < 0.3),
        bag=bool(rng.random() < 0.25),
        hat=bool(rng.random() < 0.2),
        backpack_colour=_choice(rng, palette_names),
        bag_colour=_choice(rng, palette_names),
        hat_colour=_choice(rng, palette_names),
    )
    gait = Gait(
        stride=float(rng.uniform(0.22, 0.5)),
        cadence=float(rng.uniform(0.07, 0.13)),
        arm_swing=float(rng.uniform(0.12, 0.55)),
        bounce=float(rng.uniform(0.004, 0.014)),
    )
    upper_thickness = float(rng.uniform(0.0, 1.0))
    thermal = Thermal(
        upper_thickness=upper_thickness,
        upper_level=Thermal.level(upper_thickness),
        lower_thickness=float(rng.uniform(0.2, 0.9)),
        skin_temperature=float(rng.uniform(33.0, 35.5)),
    )
    return IdentityAttributes(
        pid=pid,
        body=body,
        hair=hair,
        upper=upper,
        lower=lower,
        shoes=shoes,
        accessories=accessories,
        gait=gait,
        thermal=thermal,
    )
