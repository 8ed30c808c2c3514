"""The JSON-lines log shared by the three training loops."""

from __future__ import annotations

import json
import time

import torch

from lsmrl.engine.step_log import StepLog


def test_records_every_n_steps_and_the_last_with_rounded_terms(tmp_path):
    path = tmp_path / "run" / "log.jsonl"
    start = time.time()
    with StepLog(path) as log:
        written = [log.log_step(step, every=4, last=9, losses={"loss": torch.tensor(1 / 3), "id": 0.123456},
                                lr=1e-5, start=start, stage=2, epoch=0) for step in range(10)]
        log.write({"eval": {"mAP": 50.0}})
        lines = [json.loads(line) for line in path.read_text().splitlines()]  # flushed as written
    assert [r["step"] for r in lines[:-1]] == [0, 4, 8, 9] and lines[-1] == {"eval": {"mAP": 50.0}}
    assert [w is not None for w in written] == [s in (0, 4, 8, 9) for s in range(10)]
    first = lines[0]
    assert first["stage"] == 2 and first["epoch"] == 0 and first["loss"] == 0.3333 and first["id"] == 0.1235
    assert first["lr"] == 1e-5 and first["elapsed_s"] >= 0
    assert log.records == lines


def test_append_keeps_earlier_records_and_no_path_keeps_them_in_memory(tmp_path):
    path = tmp_path / "log.jsonl"
    with StepLog(path) as log:
        log.write({"a": 1})
    with StepLog(path, append=True) as log:
        log.write({"b": 2})
    assert [json.loads(line) for line in path.read_text().splitlines()] == [{"a": 1}, {"b": 2}]
    memory = StepLog()
    memory.log_step(0, every=1, last=0, losses={"loss": 2.0}, lr=0.1, start=time.time())
    assert memory.records[0]["loss"] == 2.0 and memory.path is None
