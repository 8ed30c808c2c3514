"""bf16 CPU inference ops: linear layers through oneDNN with the bias and the GELU fused into the matmul.

``F.linear`` with a bias runs on a CPU as ``addmm``: the bias is first copied into every row of the output,
then the matmul accumulates onto it, and a GELU after it is one more pass over the output. In bf16 the matmul
is fast enough that these passes cost a third on top (ViT-B/16's MLP input layer, 3096 x 768 -> 3072:
148 GFLOP/s with ``F.linear`` + ``F.gelu`` against 173 GFLOP/s fused, measured interleaved on the AMD EPYC
2-core VM). oneDNN's linear primitive, ``torch.ops.mkldnn._linear_pointwise`` (the kernel ``torch.compile``'s
CPU backend emits for the same pattern), adds the bias and applies the activation in the matmul's epilogue.

It has no autograd formula, so :func:`fused_linear` takes it only without gradients, on bf16 CPU tensors,
where the op exists; anywhere else it is ``F.linear`` (and ``F.gelu``), the same values.
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
from torch import nn

#: ``nn.GELU``'s ``approximate`` -> oneDNN's GELU algorithm name
GELU_ALGORITHMS = {"none": "none", "tanh": "tanh"}


@functools.cache
def linear_pointwise_available() -> bool:
    """Whether this torch build has oneDNN's fused linear (CPU builds with mkldnn do)."""
    return torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")


def fused_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                 gelu: str | None = None) -> torch.Tensor:
    """``F.linear(x, weight, bias)``, then ``F.gelu(..., approximate=gelu)`` when ``gelu`` is given; in one oneDNN
    call with bias and GELU fused where that applies (see the module docstring), else in eager ops."""
    if (not torch.is_grad_enabled() and x.device.type == "cpu" and x.dtype == torch.bfloat16
            and weight.dtype == torch.bfloat16 and (bias is None or bias.dtype == torch.bfloat16)
            and linear_pointwise_available()):
        if gelu is None:
            return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "none", [], "")
        return torch.ops.mkldnn._linear_pointwise(x, weight, bias, "gelu", [], GELU_ALGORITHMS[gelu])
    out = F.linear(x, weight, bias)
    return out if gelu is None else F.gelu(out, approximate=gelu)


class FusedMLP(nn.Module):
    """open_clip's block MLP (``c_fc`` -> GELU -> ``c_proj``) through :func:`fused_linear`; same submodule names."""

    def __init__(self, c_fc: nn.Linear, c_proj: nn.Linear, gelu: str = "none"):
        super().__init__()
        if gelu not in GELU_ALGORITHMS:
            raise ValueError(f"gelu must be one of {sorted(GELU_ALGORITHMS)}, got {gelu!r}")
        self.c_fc = c_fc
        self.c_proj = c_proj
        self.gelu = gelu

    @classmethod
    def from_sequential(cls, mlp: nn.Module) -> "FusedMLP | None":
        """The fused twin of an open_clip MLP whose activation is ``nn.GELU``; None for any other activation
        (QuickGELU of OpenAI-format models stays as it is)."""
        names = [name for name, _ in mlp.named_children()]
        if names != ["c_fc", "gelu", "c_proj"] or type(mlp.gelu) is not nn.GELU:
            return None
        return cls(mlp.c_fc, mlp.c_proj, mlp.gelu.approximate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = fused_linear(x, self.c_fc.weight, self.c_fc.bias, gelu=self.gelu)
        return fused_linear(hidden, self.c_proj.weight, self.c_proj.bias)
