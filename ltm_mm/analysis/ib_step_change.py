"""How much the IB step moves each LTM layer's merge: ``mean |G - G0|``.

``G0`` is a layer's prior merge, the window softmax of theta and the
geometry (area pooling at initialisation); ``G`` is the merge it applies:
the IB step's informativeness scores added to the window logits, then the
eval mask.  Per layer, the mean over sequences and merged tokens of
``sum_k |G[p, k] - G0[p, k]|`` (twice the total-variation distance of a
merged token's weights, in ``[0, 2]``; 0 where the IB step does not run).
"""
from typing import Iterable, List

import torch

from ltm_mm.models.layers import find_merge_masks


def ib_step_change(model: torch.nn.Module, batches: Iterable,
                   forward) -> List[dict]:
    """Per LTM layer of ``model`` (in the order of ``model.modules()``):
    ``dict(name, change, merged_tokens, statistics, theta_moved)`` over the
    forwards that ``forward(batch)`` runs for every batch (eval mode, no
    gradient); ``theta_moved`` is the largest ``|theta|``, how far
    training moved the window logits from their initial 0."""
    masks = find_merge_masks(model)  # names them: statistics.layer_name
    sums = {id(m): [0.0, 0] for m in masks}

    def on_forward(module, args, plan):
        if plan is None:  # nothing merged at this grid
            return
        prior = module.window_priors(plan.table, plan.weights.dtype)
        g0 = torch.softmax(prior.logits, dim=-1)  # (P, K)
        # (B, P, K) - (P, K), L1 over the window, summed over B and P
        change = (plan.weights - g0).abs().sum(-1)
        sums[id(module)][0] += float(change.sum())
        sums[id(module)][1] += change.numel()

    handles = [m.register_forward_hook(on_forward) for m in masks]
    try:
        with torch.no_grad():
            for batch in batches:
                forward(batch)
    finally:
        for handle in handles:
            handle.remove()
    return [dict(name=m.statistics.layer_name,
                 change=sums[id(m)][0] / max(sums[id(m)][1], 1),
                 merged_tokens=sums[id(m)][1],
                 statistics=bool(m.statistics.is_valid()),
                 theta_moved=float(m.theta.detach().abs().max()))
            for m in masks]
