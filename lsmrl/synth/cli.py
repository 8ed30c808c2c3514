"""``python -m lsmrl synth``: generate the SynthVVI data set in the HITSZ-VCM layout."""

from __future__ import annotations

import argparse

from lsmrl.synth.generate import INFRARED_RENDERERS, SynthConfig, default_workers, generate_synthvvi
from lsmrl.synth.writer import LAYOUTS

_DEFAULTS = SynthConfig()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder (created; must be empty unless --overwrite)")
    parser.add_argument("--seed", type=int, default=_DEFAULTS.seed, help="random seed (default: %(default)s)")
    parser.add_argument(
        "--train-identities", type=int, default=_DEFAULTS.train_identities, metavar="N",
        help="training identities, pids 1..N; 0 writes only the test split (default: %(default)s)",
    )
    parser.add_argument(
        "--test-identities", type=int, default=_DEFAULTS.test_identities, metavar="M",
        help="test identities, pids N+1..N+M (default: %(default)s)",
    )
    parser.add_argument(
        "--frames", type=frame_range, default=_DEFAULTS.frames, metavar="T|MIN-MAX",
        help="frames per tracklet, fixed or drawn per tracklet from a range (default: 16-32, mean 24 like "
        "HITSZ-VCM; its loaders drop tracklets under 12)",
    )
    parser.add_argument(
        "--infrared", choices=tuple(INFRARED_RENDERERS), default=_DEFAULTS.infrared,
        help="infrared physics: 'nir' = near-infrared night cameras with illuminators (HITSZ-VCM, SYSU-MM01), "
        "'thermal' = heat (RegDB) (default: %(default)s)",
    )
    parser.add_argument("--visible-tracklets", type=int, default=_DEFAULTS.visible_tracklets, metavar="K", help="visible tracklets per identity (default: %(default)s)")
    parser.add_argument("--infrared-tracklets", type=int, default=_DEFAULTS.infrared_tracklets, metavar="K", help="infrared tracklets per identity (default: %(default)s)")
    parser.add_argument("--height", type=int, default=_DEFAULTS.height, help="frame height (default: %(default)s)")
    parser.add_argument("--width", type=int, default=_DEFAULTS.width, help="frame width (default: %(default)s)")
    parser.add_argument("--cameras", type=int, default=_DEFAULTS.cameras, help="cameras, each recording both modalities (default: %(default)s)")
    parser.add_argument("--jpeg-quality", type=int, default=_DEFAULTS.jpeg_quality, help="JPEG quality (default: %(default)s)")
    parser.add_argument(
        "--layout", choices=LAYOUTS, default=_DEFAULTS.layout,
        help="'split': <out>/Train|Test/<pid>/...; 'flat': <out>/<pid>/... as the unmodified MITML loader joins paths (default: %(default)s)",
    )
    parser.add_argument("--workers", type=int, default=default_workers(), help="processes; output is identical for any value (default: %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace a previous SynthVVI set in --out")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def frame_range(text: str) -> tuple[int, int]:
    """``"24"`` -> (24, 24); ``"16-32"`` -> (16, 32)."""
    try:
        low, _, high = text.partition("-")
        bounds = (int(low), int(high or low))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or MIN-MAX, got {text!r}") from None
    if not 1 <= bounds[0] <= bounds[1]:
        raise argparse.ArgumentTypeError(f"expected 1 <= MIN <= MAX, got {text!r}")
    return bounds


def run(args: argparse.Namespace) -> int:
    if args.frames[0] < 12:
        print(f"note: --frames {args.frames[0]} < 12: HITSZ-VCM loaders (MITML, lsmrl's reader) drop such tracklets by default")
    summary = generate_synthvvi(
        out=args.out,
        seed=args.seed,
        train_identities=args.train_identities,
        test_identities=args.test_identities,
        frames=args.frames,
        infrared=args.infrared,
        visible_tracklets=args.visible_tracklets,
        infrared_tracklets=args.infrared_tracklets,
        height=args.height,
        width=args.width,
        cameras=args.cameras,
        jpeg_quality=args.jpeg_quality,
        layout=args.layout,
        workers=args.workers,
        overwrite=args.overwrite,
        progress=not args.no_progress,
    )
    train, test = summary["train"], summary["test"]
    print(
        f"SynthVVI v{summary['synthvvi_version']} ({summary['infrared']} infrared) written to {summary['out']} "
        f"(seed {summary['seed']}):\n"
        f"  train: {train['identities']} identities, {train['tracklets']} tracklets, {train['frames']} frames\n"
        f"  test:  {test['identities']} identities, {test['tracklets']} tracklets ({test['queries']} infrared queries), "
        f"{test['frames']} frames\n"
        f"  {summary['files']} files, {summary['bytes'] / 1e6:.1f} MB, {summary['seconds']:.1f} s wall time "
        f"({summary['workers']} workers)"
    )
    return 0
