"""A picture of SynthVVI: the same identities in visible, near-infrared and thermal light, from two cameras.

``python -m lsmrl.synth.preview --out docs/synthvvi.png [--seed 0] [--identities 5]``
renders, for each identity, one tracklet plan per camera and shows its middle
frame through the three renderers (same pose, same background crop), so what
changes between modalities is only the physics. This is the README's figure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from lsmrl.synth.cameras import make_cameras, render_background
from lsmrl.synth.figure import plan_tracklet
from lsmrl.synth.generate import identity_rng
from lsmrl.synth.identities import sample_identity
from lsmrl.synth.render import render_infrared, render_nir, render_visible

RENDERERS = (("visible", render_visible), ("NIR", render_nir), ("thermal", render_infrared))
FRAMES = 9  # a short plan; its middle frame is shown


def render_preview(seed: int = 0, identities: int = 5, cameras: tuple[int, int] = (1, 2), height: int = 128,
                   width: int = 64, scale: int = 2) -> Image.Image:
    """A grid: one row per identity, columns = camera x (visible, NIR, thermal), labelled."""
    specs = make_cameras(seed, max(cameras))
    backgrounds = {c: render_background(specs[c - 1], seed, height, width, 2) for c in cameras}
    font = ImageFont.load_default(size=14)
    label_h, gap = 40, 6
    tile_w, tile_h = width * scale, height * scale
    columns = [(c, name) for c in cameras for name, _ in RENDERERS]
    sheet = Image.new("RGB", (len(columns) * (tile_w + gap) + gap, label_h + identities * (tile_h + gap) + gap), "white")
    draw = ImageDraw.Draw(sheet)
    for col, (camid, name) in enumerate(columns):
        x = gap + col * (tile_w + gap)
        draw.text((x + 2, 4), f"camera {camid}", fill="black", font=font)
        draw.text((x + 2, 20), name, fill="black", font=font)
    for row in range(identities):
        pid = row + 1
        attrs = sample_identity(identity_rng(seed, pid, 0), pid)
        for col, (camid, name) in enumerate(columns):
            camera = specs[camid - 1]
            plan = plan_tracklet(identity_rng(seed, pid, 100 + camid), attrs, camera, FRAMES, height, width)
            render = dict(RENDERERS)[name]
            frames = render(attrs, camera, backgrounds[camid], plan, np.random.default_rng(pid), height, width, 2)
            tile = Image.fromarray(frames[FRAMES // 2]).resize((tile_w, tile_h), Image.Resampling.NEAREST)
            sheet.paste(tile, (gap + col * (tile_w + gap), label_h + gap + row * (tile_h + gap)))
    return sheet


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lsmrl.synth.preview", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="PNG file to write")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--identities", type=int, default=5)
    args = parser.parse_args(argv)
    if args.identities < 1:
        print("error: --identities must be >= 1", file=sys.stderr)
        return 1
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    render_preview(args.seed, args.identities).save(args.out, optimize=True)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
