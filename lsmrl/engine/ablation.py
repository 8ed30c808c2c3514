"""``python -m lsmrl ablation``: the ablation table on one data set, the same budget for every row.

Rows (``lsmrl/configs/ablation/*.yaml``): frame-wise CLIP baseline; + STFL;
+ SD; + CMI; + modality-level losses (= full LSMRL). Every row uses the same
CLIP weights, seed, batch composition and number of stage-2 steps. Rows that
already have ``model.safetensors`` are skipped, so the table can be built
across sessions; ``--rows`` picks a subset. The table is written as Markdown
and JSON next to the runs.

``--seeds 0 1 2`` trains every row once per seed (``OUT/seed<S>/<row>``, the
``seed`` override: initialisation, sampling and augmentation; the data and
the CLIP weights stay the same) and adds ``seeds.md``: per row the mean and
sample standard deviation over the seeds, and per seed each row's lead over
the baseline, so a difference can be weighed against the seed-to-seed spread.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from lsmrl.config import CONFIG_DIR, load_config
from lsmrl.engine.trainer import train
from lsmrl.model.checkpoint import read_checkpoint_meta

ROWS = {
    "1_baseline": "frame-wise CLIP baseline",
    "2_stfl": "+ STFL",
    "3_sd": "+ SD",
    "4_cmi": "+ CMI",
    "5_full": "+ modality losses (full LSMRL)",
}
# Single-seed control rows, trained only when named with --rows: what each part adds on its own
# (the baseline with the modality losses) and what the full model loses without each module.
EXTRA_ROWS = {
    "6_baseline_modality": "baseline + modality losses",
    "7_full_minus_stfl": "full - STFL",
    "8_full_minus_sd": "full - SD",
    "9_full_minus_cmi": "full - CMI",
}
ALL_ROWS = {**ROWS, **EXTRA_ROWS}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--clip-weights", default=None)
    parser.add_argument("--out", required=True, help="directory of the runs (one sub-directory a row)")
    parser.add_argument("--rows", nargs="*", default=list(ROWS), choices=list(ALL_ROWS),
                        help="default: the five main rows; the control rows 6-9 only when named")
    parser.add_argument("--device", default=None)
    parser.add_argument("--seeds", nargs="+", type=int, default=None,
                        help="train every row once per seed (OUT/seed<S>/<row>) and tabulate mean and sd (seeds.md)")
    parser.add_argument("overrides", nargs="*", help="dotted overrides applied to every row (same budget)")


def run(args: argparse.Namespace) -> int:
    if args.seeds:
        if any(o.split("=", 1)[0] == "seed" for o in args.overrides):
            raise SystemExit("error: give the seeds with --seeds, not as a seed= override")
        for seed in args.seeds:
            print(f"seed {seed}")
            _train_rows(Path(args.out) / f"seed{seed}", args.rows, list(args.overrides) + [f"seed={seed}"], args)
        table = seed_table(args.out)
        (Path(args.out) / "seeds.md").write_text(table + "\n")
        print(table)
        return 0
    _train_rows(Path(args.out), args.rows, list(args.overrides), args)
    return 0


def _train_rows(out: Path, rows: list[str], overrides: list[str], args: argparse.Namespace) -> None:
    for row in rows:
        run_dir = out / row
        if (run_dir / "model.safetensors").is_file():
            print(f"{row}: done already ({run_dir})")
            continue
        config = load_config(CONFIG_DIR / "ablation" / f"{row}.yaml", overrides + [f"data.root={args.data_root}"])
        print(f"{row}: {ALL_ROWS[row]}")
        train(config, run_dir, args.clip_weights, resume=(run_dir / "last.safetensors").is_file(),
              device=args.device)
    table = ablation_table(out)
    (out / "ablation.md").write_text(table + "\n")
    print(table)


def ablation_rows(out: str | Path) -> list[dict]:
    rows = []
    for row, label in ALL_ROWS.items():
        path = Path(out) / row / "model.safetensors"
        if not path.is_file():
            continue
        meta = read_checkpoint_meta(path)
        metrics = meta.get("metrics") or {}
        training = meta.get("training") or {}
        timings = training.get("timings", {})
        data = meta.get("data") or {}
        rows.append({"row": row, "label": label, "metrics": metrics, "timings": timings,
                     "steps": training["config"]["stage2"]["steps"], "seed": training["config"].get("seed"),
                     "wall_time_s": round(sum(v for k, v in timings.items() if k.endswith("_s")), 1),
                     "config": training.get("config"), "data_fingerprint": data.get("fingerprint"),
                     "synthvvi_version": data.get("synthvvi_version"),
                     "module_effects": training.get("module_effects")})
    return rows


def ablation_table(out: str | Path) -> str:
    rows = ablation_rows(out)
    (Path(out) / "ablation.json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = ["| model | IR→VIS R1 | IR→VIS mAP | VIS→IR R1 | VIS→IR mAP | stage 1 s | stage 2 s |",
             "|---|---|---|---|---|---|---|"]
    for row in rows:
        ir, vis = row["metrics"].get("infrared_to_visible", {}), row["metrics"].get("visible_to_infrared", {})
        lines.append(f"| {row['label']} | {ir.get('rank1', float('nan')):.1f} | {ir.get('mAP', float('nan')):.1f} | "
                     f"{vis.get('rank1', float('nan')):.1f} | {vis.get('mAP', float('nan')):.1f} | "
                     f"{row['timings'].get('stage1_s', 0):.0f} | {row['timings'].get('stage2_s', 0):.0f} |")
    return "\n".join(lines)


METRICS = (("infrared_to_visible", "rank1"), ("infrared_to_visible", "mAP"), ("visible_to_infrared", "rank1"),
           ("visible_to_infrared", "mAP"))


def seed_table(out: str | Path) -> str:
    """Mean (sample sd) over the ``OUT/seed<S>`` runs of every row, then each seed's lead over the baseline (mAP)."""
    seed_dirs = sorted((d for d in Path(out).glob("seed*") if d.is_dir() and d.name[4:].isdigit()),
                       key=lambda d: int(d.name[4:]))
    by_seed = {int(d.name[4:]): {row["row"]: row for row in ablation_rows(d)} for d in seed_dirs}
    lines = ["| model | seeds | IR→VIS R1 | IR→VIS mAP | VIS→IR R1 | VIS→IR mAP |", "|---|---|---|---|---|---|"]
    for row, label in ALL_ROWS.items():
        runs = [rows[row] for rows in by_seed.values() if row in rows]
        if not runs:
            continue
        cells = []
        for direction, metric in METRICS:
            values = [r["metrics"].get(direction, {}).get(metric) for r in runs]
            values = [v for v in values if v is not None]
            spread = f" ({statistics.stdev(values):.1f})" if len(values) > 1 else ""
            cells.append(f"{statistics.fmean(values):.1f}{spread}" if values else "n/a")
        lines.append(f"| {label} | {len(runs)} | " + " | ".join(cells) + " |")
    lines += ["", "mAP lead over the baseline, IR→VIS / VIS→IR, per seed:", "",
              "| model | " + " | ".join(f"seed {seed}" for seed in by_seed) + " |",
              "|---|" + "---|" * len(by_seed)]
    for row, label in list(ALL_ROWS.items())[1:]:
        cells = []
        for rows in by_seed.values():
            pairs = [tuple(rows[name]["metrics"].get(d, {}).get("mAP") if name in rows else None
                           for name in (row, "1_baseline")) for d in ("infrared_to_visible", "visible_to_infrared")]
            if all(ours is not None and base is not None for ours, base in pairs):  # a --no-eval run has none
                cells.append(" / ".join(f"{ours - base:+.1f}" for ours, base in pairs))
            else:
                cells.append("n/a")
        if any(cell != "n/a" for cell in cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
