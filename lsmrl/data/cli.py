"""``python -m lsmrl stats --dataset NAME --data-root DIR``: print a data set's statistics table."""

from __future__ import annotations

import argparse

from lsmrl.data.registry import build_dataset, dataset_statistics

DATASET_NAMES = ("hitsz-vcm", "buptcampus", "synthvvi")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dataset", required=True, choices=DATASET_NAMES, help="layout and protocol of the folder")
    parser.add_argument("--data-root", required=True, help="the data set folder")
    parser.add_argument(
        "--min-length", type=int, default=None, help="hitsz-vcm/synthvvi: drop shorter tracklets (default 12)"
    )
    parser.add_argument(
        "--allow-empty-train", action="store_true", help="hitsz-vcm: accept a test-only copy (empty train index files)"
    )
    parser.add_argument(
        "--auxiliary", action="store_true", help="buptcampus: add train_auxiliary.txt to the training set"
    )
    parser.add_argument(
        "--truncate-to-official",
        action="store_true",
        help="buptcampus: drop RGB test tracklets to a multiple of 64 as the official sampler does",
    )
    parser.add_argument("--no-check-files", action="store_true", help="do not check that every frame file exists")


def run(args: argparse.Namespace) -> int:
    options: dict = {"check_files": not args.no_check_files}
    if args.dataset in ("hitsz-vcm", "synthvvi"):
        if args.min_length is not None:
            options["min_length"] = args.min_length
        if args.allow_empty_train:
            options["allow_empty_train"] = True
    elif args.dataset == "buptcampus":
        options["include_auxiliary"] = args.auxiliary
        options["truncate_to_official"] = args.truncate_to_official
    dataset = build_dataset(args.dataset, args.data_root, **options)
    print(dataset_statistics(dataset))
    return 0
