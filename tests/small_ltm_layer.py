"""One small LTM layer in eval (a mask module with synthetic statistics)
and its merge and unmerge on a 20x20 grid, for the hot-path and compiler
tests."""
import torch

from ltm_mm.analysis.synthetic_statistics import fill_synthetic_statistics
from ltm_mm.models.layers import LearnableMergeMask

DIM = 16


def small_ltm_layer(with_statistics: bool = True) -> LearnableMergeMask:
    """Mask module of width :data:`DIM`, r = 0.7, K = 10, seeded, eval."""
    torch.manual_seed(0)
    mask = LearnableMergeMask(DIM, 0.7, num_classes=10)
    if with_statistics:
        fill_synthetic_statistics(mask)
    return mask.eval()


def merge_and_unmerge(mask: LearnableMergeMask,
                      tokens: torch.Tensor) -> torch.Tensor:
    """``(B, 400, DIM)`` tokens merged by ``mask``'s plan and unmerged."""
    plan = mask(tokens, (20, 20))
    return plan.unmerge(plan.merge(tokens))
