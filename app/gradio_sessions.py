"""Gradio's per-session block configs, computed when a session first needs them instead of for every new session.

Every call that arrives without a session of its own (each ``/gradio_api/call``, each
``gradio_client`` call) makes Gradio create a :class:`gradio.state_holder.SessionState`, whose
constructor builds the config of *every* block of the page (``config_for_block``: props, API info,
signatures). The explorer's page has about 165 blocks: about 30 ms of CPU per API call on a quiet
2-core machine (86 ms on a loaded one), 10x the handler's own work, and a copy of every config kept
per session (up to ``state_session_capacity`` sessions). A session only reads the configs of the
blocks it updates, and all of them only to restore a deep link.

:func:`install` replaces the eager dict by :class:`LazyBlockConfigs`, which computes a block's
config on first access, from the session's own copy of the blocks (the same call Gradio makes), and
all of them when the session is iterated (deep links). What a session sees is unchanged; only when
the work happens. The constructor is replaced only on the Gradio version it was written against
(the rest of :class:`SessionState` is left as it is); elsewhere :func:`install` does nothing and
says so.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from typing import Any

import gradio
from gradio.state_holder import SessionState

#: The Gradio versions whose ``SessionState.__init__`` this module reproduces (apart from the eager configs).
SUPPORTED_GRADIO = ("6.31.",)
#: Gradio's own constructor (what :func:`uninstall` puts back).
EAGER_INIT = SessionState.__init__


class LazyBlockConfigs(dict):
    """``{block id: config}`` whose entries are computed on first access (see the module docstring)."""

    def __init__(self, blocks_config: Any, ids: list[int]):
        super().__init__()
        self._blocks_config = blocks_config
        self._order = list(ids)  # Gradio's order: the page's blocks in the order they were made
        self._pending = set(ids)

    def _fill(self, key: int) -> None:
        if key in self._pending:
            self._pending.discard(key)
            block = self._blocks_config.blocks[key]
            dict.__setitem__(self, key, self._blocks_config.config_for_block(key, [], block))

    def _fill_all(self) -> None:
        if not self._pending:
            return
        for key in self._order:
            self._fill(key)
        built = dict(dict.items(self))
        dict.clear(self)
        for key in self._order + [k for k in built if k not in set(self._order)]:
            if key in built:
                dict.__setitem__(self, key, built[key])

    def __getitem__(self, key: int) -> Any:
        self._fill(key)
        return dict.__getitem__(self, key)

    def __setitem__(self, key: int, value: Any) -> None:
        self._pending.discard(key)
        dict.__setitem__(self, key, value)

    def __contains__(self, key: object) -> bool:
        return key in self._pending or dict.__contains__(self, key)

    def __len__(self) -> int:
        return dict.__len__(self) + len(self._pending)

    def __iter__(self) -> Iterator[int]:
        self._fill_all()
        return dict.__iter__(self)

    def get(self, key: int, default: Any = None) -> Any:
        return self[key] if key in self else default

    def keys(self):
        self._fill_all()
        return dict.keys(self)

    def values(self):
        self._fill_all()
        return dict.values(self)

    def items(self):
        self._fill_all()
        return dict.items(self)


def _lazy_init(self: SessionState, blocks: Any) -> None:
    """``SessionState.__init__`` of Gradio 6.31 with the block configs computed on demand."""
    self.blocks_config = copy.copy(blocks.default_config)
    self.config_values = LazyBlockConfigs(self.blocks_config,
                                          [k for k in self.blocks_config.blocks if k in blocks.blocks])
    self.state_data = {}
    self._state_ttl = {}
    self.is_closed = False
    self.STATE_TTL_WHEN_CLOSED = 1 if os.getenv("GRADIO_IS_E2E_TEST", None) else 3600


def install() -> bool:
    """Make new sessions compute their block configs lazily; True if installed (False: another Gradio)."""
    if SessionState.__init__ is _lazy_init:
        return True
    if not gradio.__version__.startswith(SUPPORTED_GRADIO):
        print(f"note: gradio {gradio.__version__} is not {'/'.join(SUPPORTED_GRADIO)}x: sessions keep Gradio's "
              "eager block configs (slower API calls, more memory per session)", flush=True)
        return False
    SessionState.__init__ = _lazy_init
    return True


def uninstall() -> None:
    """Gradio's eager constructor again (tests compare the two)."""
    SessionState.__init__ = EAGER_INIT


__all__ = ["EAGER_INIT", "LazyBlockConfigs", "SUPPORTED_GRADIO", "install", "uninstall"]
