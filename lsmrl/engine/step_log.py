"""The JSON-lines log of a training loop: one record every ``every`` steps and at the last, plus any other record.

The three loops (CLIP pretraining, stage 1's prompts, stage 2) log through
:class:`StepLog`, so their records share one shape: the fixed fields of the
loop (``{"stage": 2, "epoch": 3}``), ``step``, each loss term rounded to 4
decimals, the learning rate and the seconds since the loop started. Each line
is flushed as it is written, so a long run can be followed with ``tail -f``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def _scalar(value: Any) -> float:
    """A float of a loss term: a plain number or a one-element tensor (detached: the log never keeps a graph)."""
    return float(value.detach()) if hasattr(value, "detach") else float(value)


class StepLog:
    """A JSON-lines file (``path``; None: kept in memory only) and the records written to it (:attr:`records`)."""

    def __init__(self, path: str | Path | None = None, append: bool = False):
        self.path = Path(path) if path is not None else None
        self.records: list[dict] = []
        self._file = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a" if append else "w", encoding="utf-8")

    @staticmethod
    def due(step: int, every: int, last: int) -> bool:
        """Whether ``step`` gets a record: every ``every`` steps and at the ``last`` one."""
        return step % max(1, int(every)) == 0 or step == last

    def log_step(self, step: int, *, every: int, last: int, losses: Mapping[str, Any], lr: float, start: float,
                 **fixed: Any) -> dict | None:
        """Write ``{**fixed, "step", losses (4 decimals), "lr", "elapsed_s"}`` when the step is :meth:`due`;
        returns the record (None when not due). ``losses`` may hold floats or one-element tensors."""
        if not self.due(step, every, last):
            return None
        record = {**fixed, "step": int(step),
                  **{name: round(_scalar(value), 4) for name, value in losses.items()},
                  "lr": float(lr), "elapsed_s": round(time.time() - start, 1)}
        return self.write(record)

    def write(self, record: dict) -> dict:
        """Append any record (a validation, an epoch's means, the evaluation) and flush it."""
        self.records.append(record)
        if self._file is not None:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()
        return record

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "StepLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
