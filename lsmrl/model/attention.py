"""Self-attention of the visual tower through ``F.scaled_dot_product_attention``.

open_clip's blocks call ``nn.MultiheadAttention(x, x, x, need_weights=False)``. In fp32 eval that takes
PyTorch's fused fast path, but under autocast (and whenever gradients are on) it falls back to
``F.multi_head_attention_forward``, which transposes the batch-first input to (L, B, E) and then computes the
packed in-projection as a batched matmul against the weight *expanded* over all L positions: on a CPU that
materialises an (L, E, 3E) copy of the weight in every block (ViT-B/16 at 256x128: 129 x 768 x 2304 bf16
values, 450 MB per block and call), which took 63% of a bf16 ViT-B/16 extraction's CPU time.

:class:`SDPAttention` is an ``nn.MultiheadAttention`` (same parameters, state-dict keys and constructor) whose
forward computes batch-first self-attention directly: one ``F.linear`` for Q, K and V, the fused
``F.scaled_dot_product_attention`` (its CPU kernels take fp32 and bf16), one ``F.linear`` out (both linears
through :func:`lsmrl.model.fused.fused_linear`: oneDNN with the bias fused for gradient-free bf16 on a CPU). Every other
call (attention weights requested, a mask, cross-attention, sequence-first layouts) goes to
``nn.MultiheadAttention``'s own forward, so explanation code that asks for the weights keeps them.
:func:`use_sdpa` converts a module tree's ``nn.MultiheadAttention`` layers in place.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lsmrl.model.fused import fused_linear


class SDPAttention(nn.MultiheadAttention):
    """``nn.MultiheadAttention`` whose plain batch-first self-attention runs through fused SDPA."""

    def takes_sdpa(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, key_padding_mask,
                   need_weights: bool, attn_mask, is_causal: bool) -> bool:
        """Whether a call can go through SDPA: self-attention (one tensor as query, key and value), batch-first
        (B, L, E), packed projections with no extra key/value biases, no mask, no weights asked for."""
        return (query is key and key is value and query.dim() == 3 and self.batch_first
                and self._qkv_same_embed_dim and self.in_proj_weight is not None
                and self.bias_k is None and not self.add_zero_attn
                and not need_weights and attn_mask is None and key_padding_mask is None and not is_causal)

    def forward(self, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, key_padding_mask=None,
                need_weights: bool = True, attn_mask=None, average_attn_weights: bool = True,
                is_causal: bool = False):
        if not self.takes_sdpa(query, key, value, key_padding_mask, need_weights, attn_mask, is_causal):
            return super().forward(query, key, value, key_padding_mask=key_padding_mask, need_weights=need_weights,
                                   attn_mask=attn_mask, average_attn_weights=average_attn_weights,
                                   is_causal=is_causal)
        batch, length, width = query.shape
        qkv = fused_linear(query, self.in_proj_weight, self.in_proj_bias)
        q, k, v = qkv.view(batch, length, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.dropout if self.training else 0.0)
        out = out.transpose(1, 2).reshape(batch, length, width)
        return fused_linear(out, self.out_proj.weight, self.out_proj.bias), None


def use_sdpa(module: nn.Module) -> nn.Module:
    """Turn every ``nn.MultiheadAttention`` under ``module`` into an :class:`SDPAttention`, in place (idempotent).

    Only the class changes: the parameters, buffers, hooks and state-dict keys stay as they are, so
    checkpoints load either way and hooks registered on the attention modules keep firing.
    """
    for child in module.modules():
        if type(child) is nn.MultiheadAttention:
            child.__class__ = SDPAttention
    return module
