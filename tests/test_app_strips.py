"""The app's strip-image cache stays bounded: files the LRU drops are deleted."""

from __future__ import annotations

from app.tabs.shared import LRU as _LRU


def test_lru_evicts_least_recently_used_and_reports_it(tmp_path):
    files = []
    for name in "abcd":
        path = tmp_path / f"{name}.png"
        path.write_bytes(b"x")
        files.append(path)
    lru = _LRU(size=2, on_evict=lambda path: path.unlink(missing_ok=True))
    lru.get("a", lambda: files[0])
    lru.get("b", lambda: files[1])
    assert lru.get("a", lambda: None) == files[0]  # a is now the most recent
    lru.get("c", lambda: files[2])  # drops b
    lru.get("d", lambda: files[3])  # drops a
    assert [p.exists() for p in files] == [False, False, True, True]
    assert lru.get("c", lambda: None) == files[2]
