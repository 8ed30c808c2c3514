"""Distances between query and gallery features.

Both functions take numpy arrays or torch tensors. If either input is a torch
tensor, the computation runs in torch (on that tensor's device) and returns a
tensor; otherwise it runs in numpy and returns an array. torch is never
imported by this module: a tensor can only exist if the caller imported torch.

Conventions: a smaller distance means more similar; HITSZ-VCM work usually
ranks by cosine distance on L2-normalised features, BUPTCampus' official
evaluation by Euclidean distance.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

_EPS = 1e-12


def _is_tensor(x: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def _check_pair(q: Any, g: Any) -> None:
    if q.ndim != 2 or g.ndim != 2:
        raise ValueError(f"features must be 2-D (num_items, dim), got shapes {tuple(q.shape)} and {tuple(g.shape)}")
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"query and gallery features differ in dimension: {q.shape[1]} vs {g.shape[1]}")


def _as_float_array(x: Any) -> np.ndarray:
    array = np.asarray(x)
    return array if np.issubdtype(array.dtype, np.floating) else array.astype(np.float32)


def cosine_distance(q: Any, g: Any) -> Any:
    """``1 - cos(q_i, g_j)`` for every pair: (Q, D) x (G, D) -> (Q, G), in [0, 2].

    A zero feature vector has similarity 0 to everything (distance 1).
    """
    if _is_tensor(q) or _is_tensor(g):
        import torch

        q_t, g_t = torch.as_tensor(q), torch.as_tensor(g)
        if not q_t.is_floating_point():
            q_t = q_t.float()
        g_t = g_t.to(device=q_t.device, dtype=q_t.dtype)
        _check_pair(q_t, g_t)
        q_n = q_t / q_t.norm(dim=1, keepdim=True).clamp_min(_EPS)
        g_n = g_t / g_t.norm(dim=1, keepdim=True).clamp_min(_EPS)
        return 1.0 - q_n @ g_n.T
    q_a, g_a = _as_float_array(q), _as_float_array(g)
    _check_pair(q_a, g_a)
    q_n = q_a / np.maximum(np.linalg.norm(q_a, axis=1, keepdims=True), _EPS)
    g_n = g_a / np.maximum(np.linalg.norm(g_a, axis=1, keepdims=True), _EPS)
    return 1.0 - q_n @ g_n.T


def euclidean_distance(q: Any, g: Any) -> Any:
    """``||q_i - g_j||_2`` for every pair: (Q, D) x (G, D) -> (Q, G).

    Computed as ``sqrt(|q|^2 + |g|^2 - 2 q.g)`` (clamped at 0), which is what
    every ReID code base does; it can be off by ~1e-4 relative for near-identical
    float32 vectors.
    """
    if _is_tensor(q) or _is_tensor(g):
        import torch

        q_t, g_t = torch.as_tensor(q), torch.as_tensor(g)
        if not q_t.is_floating_point():
            q_t = q_t.float()
        g_t = g_t.to(device=q_t.device, dtype=q_t.dtype)
        _check_pair(q_t, g_t)
        squared = (q_t * q_t).sum(1, keepdim=True) + (g_t * g_t).sum(1)[None, :] - 2.0 * (q_t @ g_t.T)
        return squared.clamp_min(0.0).sqrt()
    q_a, g_a = _as_float_array(q), _as_float_array(g)
    _check_pair(q_a, g_a)
    squared = (q_a * q_a).sum(1, keepdims=True) + (g_a * g_a).sum(1)[None, :] - 2.0 * (q_a @ g_a.T)
    return np.sqrt(np.maximum(squared, 0.0))


DISTANCES = {"cosine": cosine_distance, "euclidean": euclidean_distance}


def compute_distance(q: Any, g: Any, metric: str = "cosine") -> Any:
    """Dispatch on ``metric`` ("cosine" or "euclidean")."""
    try:
        fn = DISTANCES[metric]
    except KeyError:
        raise ValueError(f"metric must be one of {sorted(DISTANCES)}, got {metric!r}") from None
    return fn(q, g)
