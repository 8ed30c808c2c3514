"""``python -m lsmrl ablation``: the ablation table on one data set, the same budget for every row.

Rows (``lsmrl/configs/ablation/*.yaml``): frame-wise CLIP baseline; + STFL;
+ SD; + CMI; + modality-level losses (= full LSMRL). Every row uses the same
CLIP weights, seed, batch composition and number of stage-2 steps. Rows that
already have ``model.safetensors`` are skipped, so the table can be built
across sessions; ``--rows`` picks a subset. The table is written as Markdown
and JSON next to the runs.
"""

from __future__ import annotations

import argparse
import json
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--clip-weights", default=None)
    parser.add_argument("--out", required=True, help="directory of the runs (one sub-directory a row)")
    parser.add_argument("--rows", nargs="*", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--device", default=None)
    parser.add_argument("overrides", nargs="*", help="dotted overrides applied to every row (same budget)")


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    for row in args.rows:
        run_dir = out / row
        if (run_dir / "model.safetensors").is_file():
            print(f"{row}: done already ({run_dir})")
            continue
        config = load_config(CONFIG_DIR / "ablation" / f"{row}.yaml",
                             list(args.overrides) + [f"data.root={args.data_root}"])
        print(f"{row}: {ROWS[row]}")
        train(config, run_dir, args.clip_weights, resume=(run_dir / "last.safetensors").is_file(),
              device=args.device)
    table = ablation_table(out)
    (out / "ablation.md").write_text(table + "\n")
    print(table)
    return 0


def ablation_rows(out: str | Path) -> list[dict]:
    rows = []
    for row, label in ROWS.items():
        path = Path(out) / row / "model.safetensors"
        if not path.is_file():
            continue
        meta = read_checkpoint_meta(path)
        metrics = meta.get("metrics") or {}
        timings = (meta.get("training") or {}).get("timings", {})
        rows.append({"row": row, "label": label, "metrics": metrics, "timings": timings,
                     "steps": meta["training"]["config"]["stage2"]["steps"]})
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
