"""Reshapes between feature maps and token sequences."""
import torch


def map_to_tokens(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W) -> (B, H*W, C)``, tokens in row-major grid order."""
    return x.flatten(2).transpose(1, 2)


def tokens_to_map(tokens: torch.Tensor, grid_hw) -> torch.Tensor:
    """``(B, H*W, C) -> (B, C, H, W)``."""
    batch, _, channels = tokens.shape
    return tokens.transpose(1, 2).reshape(batch, channels, *grid_hw)


def unfold_patches(x: torch.Tensor, patch_hw) -> torch.Tensor:
    """MobileViT unfolding: one token sequence per pixel position of a patch.

    ``(B, C, H, W) -> (B * p_h * p_w, n_h * n_w, C)`` with ``n_h = H / p_h``;
    sequence ``b * p_h * p_w + (i * p_w + j)`` holds pixel ``(i, j)`` of every
    patch of image ``b``, in row-major patch order (as mmpretrain's
    MobileViT).  ``H`` and ``W`` must be multiples of the patch size.
    """
    patch_h, patch_w = patch_hw
    batch, channels, height, width = x.shape
    num_h, num_w = height // patch_h, width // patch_w
    # (B, C, n_h, p_h, n_w, p_w) -> (B, p_h, p_w, n_h, n_w, C)
    x = x.reshape(batch, channels, num_h, patch_h, num_w, patch_w)
    x = x.permute(0, 3, 5, 2, 4, 1)
    # -> (B * p_h * p_w, n_h * n_w, C)
    return x.reshape(batch * patch_h * patch_w, num_h * num_w, channels)


def fold_patches(tokens: torch.Tensor, grid_hw, patch_hw) -> torch.Tensor:
    """Inverse of :func:`unfold_patches`.

    ``(B * p_h * p_w, n_h * n_w, C) -> (B, C, n_h * p_h, n_w * p_w)``.
    """
    patch_h, patch_w = patch_hw
    num_h, num_w = grid_hw
    sequences, _, channels = tokens.shape
    batch = sequences // (patch_h * patch_w)
    # (B, p_h, p_w, n_h, n_w, C) -> (B, C, n_h, p_h, n_w, p_w)
    x = tokens.reshape(batch, patch_h, patch_w, num_h, num_w, channels)
    x = x.permute(0, 5, 3, 1, 4, 2)
    return x.reshape(batch, channels, num_h * patch_h, num_w * patch_w)
