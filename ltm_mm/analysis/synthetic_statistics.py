"""Give untrained LTM layers the compute of trained ones, for measuring.

A freshly built LTM model has no class statistics, so its layers skip the
IB step (and its MLP); a trained model runs them.  For MACs and latency we
fill every LTM layer with random *valid* statistics (deterministic seed)
and a non-zero MLP output layer, so the measured work is a trained model's.
Outputs are meaningless; only the cost is.
"""
import torch

from ltm_mm.models.layers import find_merge_masks


@torch.no_grad()
def fill_synthetic_statistics(model: torch.nn.Module, seed: int = 0) -> int:
    """Returns the number of LTM layers filled."""
    gen = torch.Generator().manual_seed(seed)
    masks = find_merge_masks(model)
    for mask in masks:
        stats = mask.statistics
        num_classes = stats.num_pretrain_classes
        stats.update(
            torch.randn(stats.centroids.shape, generator=gen),
            torch.randn(num_classes, num_classes,
                        generator=gen).log_softmax(0),
            torch.randn(stats.input_centroids.shape, generator=gen), 1e-3)
        mask.mlp_out.weight.normal_(0, 0.02, generator=gen)
        mask.drop_inference_constants()  # a weight changed in place
    return len(masks)
