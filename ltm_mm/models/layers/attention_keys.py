"""The attention keys a ``tome`` merger matches on, read off a forward.

ToMe measures token similarity on the keys of the attention that precedes
the merge, averaged over heads.  They are taken from the output of the
attention's own qkv projection while it runs (a forward hook that lives
only for that call), so nothing is computed twice and no upstream forward
is copied.
"""
from contextlib import contextmanager

import torch
from torch import nn


@contextmanager
def captured_output(module: nn.Module):
    """Collect ``module``'s outputs in a list during the ``with`` body."""
    outputs = []
    handle = module.register_forward_hook(
        lambda _module, _args, output: outputs.append(output))
    try:
        yield outputs
    finally:
        handle.remove()


def multihead_keys(qkv: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Keys of mmpretrain's ``MultiheadAttention`` from its ``qkv`` output.

    ``(B, N, 3 * D) -> (B, N, D / heads)``, averaged over heads.
    """
    batch, num_tokens, _ = qkv.shape
    # (B, N, 3 * D) -> (B, N, 3, heads, d), as the attention splits it
    qkv = qkv.reshape(batch, num_tokens, 3, num_heads, -1)
    return qkv[:, :, 1].mean(dim=2)  # (B, N, heads, d) -> (B, N, d)


def lite_mla_keys(qkv: torch.Tensor, head_dim: int) -> torch.Tensor:
    """Keys of EfficientViT's ``LiteMLA`` (base scale) from its ``qkv`` conv
    output, before the ReLU kernel.

    ``(B, heads * 3d, H, W) -> (B, H * W, d)``, averaged over heads.
    """
    batch = qkv.shape[0]
    # channels per head are [q | k | v]: (B, heads, 3d, N)
    qkv = qkv.reshape(batch, -1, 3 * head_dim, qkv.shape[-2] * qkv.shape[-1])
    keys = qkv[:, :, head_dim:2 * head_dim].mean(dim=1)  # (B, d, N)
    return keys.transpose(1, 2)  # (B, N, d)
