"""Rebuilding the shipped analysis cache and the example videos (``python app/main.py --build-cache``).

After the demo checkpoints change, :func:`build_cache` extracts every stage of
the test split, precomputes the gap table, the probes and the UMAP layouts into
``checkpoints/cache/`` and writes the example upload videos (one tracklet per
query modality and a two-person scene) into ``assets/cache/examples/``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

from app.config import EXAMPLE_FRAMES, EXAMPLES_DIR, HUB_PLAIN_FILE_LIMIT, SHIPPED_CACHE, AppConfig, user_cache_dir
from app.resources import example_label, seed_cache
from lsmrl.analysis.cache import key_belongs, stored_key
from lsmrl.analysis.explorer import ANALYSIS_VERSION, Explorer
from lsmrl.data.people import Walker, compose_scene
from lsmrl.data.video_write import write_video
from lsmrl.errors import LSMRLError


def build_cache(config: AppConfig | None = None, out_dir: Path = SHIPPED_CACHE, examples_dir: Path = EXAMPLES_DIR,
                progress: Callable[[float, str], None] | None = None) -> dict:
    """(Re)build the shipped cache for ``config`` (default: the demo) and the example videos.

    Builds in a fresh folder next to ``out_dir``, seeded with whatever the
    existing shipped and user caches hold (so nothing already computed for these
    weights is computed again), opens the Explorer, precomputes the gap table,
    the probes and the UMAP layouts, drops every file that belongs to other
    weights or data, and swaps the folder in. Returns a summary with file sizes.
    """
    report = progress or (lambda fraction, message: print(f"[{fraction:4.0%}] {message}", flush=True))
    config = config or AppConfig.resolve()
    problems = config.problems()
    if problems:
        raise LSMRLError("; ".join(problems))
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".cache-build-", dir=out_dir.parent))
    try:
        seed_cache(work, [out_dir, user_cache_dir()])
        start = time.perf_counter()
        explorer = Explorer.open(config.checkpoint, config.dataset, config.data_root,
                                 compare_checkpoint=config.compare_checkpoint,
                                 baseline_checkpoint=config.baseline_checkpoint, cache_dir=work, device=config.device,
                                 progress=lambda f, m: report(0.7 * f, m), num_frames=config.num_frames,
                                 batch_size=config.batch_size, numba_cache=False)
        opened = time.perf_counter() - start
        timings = explorer.precompute(progress=lambda f, m: report(0.7 + 0.25 * f, m))
        keep_sha = {b.sha256 for b in (explorer.main, explorer.compare_bundle, explorer.baseline) if b is not None}
        data_key = explorer.main.key.data_fingerprint
        removed = []
        for path in sorted(work.iterdir()):
            key = stored_key(path) if path.is_file() else None
            if not key_belongs(key, keep_sha, data_key, ANALYSIS_VERSION):
                removed.append(path.name)
                shutil.rmtree(path) if path.is_dir() else path.unlink()
        work.chmod(0o755)  # mkdtemp makes it private; the cache is shipped and read by any user
        for path in work.iterdir():
            path.chmod(0o644)
        report(0.96, "writing the example videos")
        examples = write_examples(explorer, examples_dir)
        if out_dir.exists():
            old = out_dir.with_name(f".{out_dir.name}-old-{os.getpid()}")
            os.replace(out_dir, old)
            os.replace(work, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(work, out_dir)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    files = {p.name: p.stat().st_size for p in sorted(out_dir.iterdir()) if p.is_file()}
    files.update({f"examples/{e['file']}": (examples_dir / e["file"]).stat().st_size for e in examples})
    too_big = [name for name, size in files.items() if size >= HUB_PLAIN_FILE_LIMIT]
    if too_big:
        raise LSMRLError(f"cache files over 10 MiB (they could not be pushed to a Space): {too_big}")
    report(1.0, "done")
    return {"cache_dir": str(out_dir), "examples_dir": str(examples_dir), "files": files,
            "total_bytes": sum(files.values()), "open_seconds": opened, "precompute_seconds": timings,
            "removed": removed}


def write_examples(explorer: Explorer, out_dir: Path = EXAMPLES_DIR, per_modality: int = 1) -> list[dict]:
    """Write ``per_modality`` example upload videos of each query modality (16-frame H.264 mp4) + a manifest.

    The tracklets are the easiest queries of each direction (highest AP), so the
    examples show a working retrieval.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob("*.mp4"):
        old.unlink()
    entries = []
    for direction in explorer.directions:
        rows = [r for r in explorer.queries(direction) if r["valid"]]
        rows.sort(key=lambda r: (-(r["ap"] or 0.0), r["test_index"]))
        for row in rows[:per_modality]:
            frames = explorer.tracklet_frames(row["test_index"], EXAMPLE_FRAMES)
            name = f"{row['modality']}-{row['tid'].replace('/', '-')}-id{row['pid']}.mp4"
            write_video(frames, out_dir / name, fps=8.0)
            entry = {"file": name, "modality": row["modality"], "tid": row["tid"], "pid": row["pid"],
                     "camid": row["camid"], "frames": EXAMPLE_FRAMES}
            entries.append(dict(entry, label=example_label(entry)))
    scene = write_scene_example(explorer, out_dir)
    if scene is not None:
        entries.append(scene)
    (out_dir / "examples.json").write_text(json.dumps(entries, indent=1) + "\n", encoding="utf-8")
    return entries


#: The example scene: two people of the test split walking on a wide cluttered background.
SCENE_SIZE = (224, 480)
SCENE_FRAMES = 16


def write_scene_example(explorer: Explorer, out_dir: Path = EXAMPLES_DIR, name: str = "scene-two-people.mp4",
                        seed: int = 0) -> dict | None:
    """Write an example *scene* video (``/detect_people`` and ``person`` in ``/retrieve_video``): the two
    easiest visible queries (different identities), pasted on a textured background at the left and the
    right, walking towards each other for :data:`SCENE_FRAMES` frames. Returns its manifest entry (with the
    people's tracklet ids, identities and starting x), or None when the data set has no two such tracklets.
    """
    direction = next((d for d in explorer.directions
                      if (explorer.queries(d) or [{}])[0].get("modality") == "visible"), None)
    if direction is None:
        return None
    rows = [r for r in explorer.queries(direction) if r["valid"]]
    rows.sort(key=lambda r: (-(r["ap"] or 0.0), r["test_index"]))
    people = []
    for row in rows:
        if all(row["pid"] != other["pid"] for other in people):
            people.append(row)
        if len(people) == 2:
            break
    if len(people) < 2:
        return None
    height, width = SCENE_SIZE
    clips = [explorer.tracklet_frames(r["test_index"], SCENE_FRAMES) for r in people]
    clip_h, clip_w = clips[0].shape[1:3]
    top = (height - clip_h) // 2
    starts = [(16, top), (width - clip_w - 16, top + 8)]
    walkers = [Walker(clips[0], start=starts[0], velocity=(5, 0)),
               Walker(clips[1], start=starts[1], velocity=(-5, 0))]
    frames, _ = compose_scene(walkers, num_frames=SCENE_FRAMES, size=SCENE_SIZE, seed=seed)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_video(frames, out_dir / name, fps=8.0)
    entry = {"file": name, "modality": "visible", "kind": "scene", "frames": SCENE_FRAMES,
             "people": [{"tid": r["tid"], "pid": r["pid"], "start_x": x} for r, (x, _) in zip(people, starts)]}
    return dict(entry, label=example_label(entry))
