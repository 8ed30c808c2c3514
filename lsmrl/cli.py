"""Command-line interface: ``python -m lsmrl <command> [--help]``.

Each command lives in its own module, which exposes ``add_arguments(parser)``
and ``run(args) -> int`` (or the two function names given in ``COMMANDS``).
Only the module of the command being run is imported, so ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from lsmrl.allocator import tune_cpu_allocator
from lsmrl.errors import LSMRLError

# name -> (module, one-line help[, add_arguments name, run name])
COMMANDS: dict[str, tuple[str, ...]] = {
    "synth": ("lsmrl.synth.cli", "generate the SynthVVI data set (HITSZ-VCM layout)"),
    "synth-export": ("lsmrl.synth.export", "copy the test split of a SynthVVI tree (with a sha256 manifest)"),
    "bounds": ("lsmrl.synth.bounds", "difficulty bounds of a SynthVVI split (chance, colour, attribute oracle, "
               "silhouette matchers)"),
    "stats": ("lsmrl.data.cli", "print the statistics table of a VVI-ReID data set"),
    "pretrain-clip": ("lsmrl.engine.pretrain_clip", "contrastive pretraining of the miniature CLIP on SynthVVI"),
    "train": ("lsmrl.engine.trainer", "two-stage LSMRL training (prompts, then the full model)"),
    "train-demo": ("lsmrl.engine.demo", "the demo model from scratch: pretrain the CLIP, both stages, calibrate, eval"),
    "calibrate": ("lsmrl.engine.calibrate", "rebuild a checkpoint's CMI memory, residual centres and BN statistics "
                  "from a clean pass over its training set"),
    "module-effects": ("lsmrl.engine.module_effects", "the modality-constant share of SD's and CMI's residuals "
                       "(from an `extract` .npz)"),
    "ablation": ("lsmrl.engine.ablation", "train and tabulate the ablation rows (baseline ... full LSMRL)"),
    "eval": ("lsmrl.engine.extract", "evaluate a checkpoint in both directions (metrics + per-query JSON)"),
    "eval-draws": ("lsmrl.engine.draws", "evaluate a checkpoint (and a comparison) on fresh SynthVVI draws: mean, sd "
                   "and the paired difference with its 95 percent interval"),
    "language-probe": ("lsmrl.engine.language_probe", "how well a CLIP's text describes unseen people in each "
                       "modality (zero-shot attributes, tracklet -> own caption)"),
    "extract": ("lsmrl.engine.extract", "extract and save the features of every model stage",
                "add_extract_arguments", "run_extract"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; only ``command``'s module is imported (the others are listed by name)."""
    parser = argparse.ArgumentParser(
        prog="python -m lsmrl",
        description="LSMRL Explorer: video-based visible-infrared person re-identification.",
    )
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for name, (module_name, help_text, *functions) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        if name != command:
            continue
        add_name, run_name = functions or ("add_arguments", "run")
        module = importlib.import_module(module_name)
        getattr(module, add_name)(command_parser)
        command_parser.set_defaults(_run=getattr(module, run_name))
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    command = next((item for item in argv if not item.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    tune_cpu_allocator()  # large tensors reuse freed memory instead of faulting in fresh pages
    try:
        return int(args._run(args) or 0)
    except LSMRLError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
