"""The learnable mask module of one LTM layer (paper Sec. 3.2, Eq. 3-4).

From the tokens ``Z`` after a layer's attention it makes the merging matrix
``G`` (a :class:`MergePlan`): window logits ``theta`` plus the table's log
area prior (``theta = 0`` merges exactly as the ``pool`` merger), plus one
IB-gradient step ``s_n = -2 eta <MLP(z_n), u_i>`` once the layer has
valid class statistics; then softmax within windows and a binary keep
mask, sampled while training and thresholded at eval
(:mod:`ltm_mm.ops.mask_weights`; docs/design.md, sections 2-4).  A
sample's ``G`` never depends on the rest of its batch.

Eval forwards reuse what depends only on the weights, the statistics and the
grid (:mod:`.inference_constants`; ``model.eval()`` recomputes it); CUDA
graphs are installed from outside (:mod:`.eval_graphs`).  While
``recording`` (the statistics hook sets it) each forward writes
``self.record``, a :class:`~.merge_record.MergeRecord`.
"""
from typing import Optional

import torch
from torch import nn

from ltm_mm.ops import (WindowTable, check_ratio, merged_grid_size,
                        window_table)
from ltm_mm.ops.mask_weights import (WindowPriors, hard_masked_softmax,
                                     informativeness, initial_theta,
                                     merge_weights, score_projection,
                                     window_priors)
from .class_statistics import ClassStatistics
from .inference_constants import WithInferenceConstants
from .merge_plan import MergePlan
from .merge_record import MergeRecord
from .merger_contract import MergeInputs


#: ``score_convention`` of checkpoints whose MLP gives ``s = -2 eta <MLP,
#: u>``; checkpoints without the buffer hold the MLP of ``-2 eta beta <MLP,
#: u>``.
SCORE_CONVENTION = 2


class LearnableMergeMask(WithInferenceConstants):
    """Mask module of one LTM layer.

    Args:
        dim (int): token width D of ``Z``.
        ratio (float): compression ratio r in (0, 1]; the merged grid is
            ``(ceil(h sqrt r), ceil(w sqrt r))``.
        window_size (int): k of the k x k merging windows. Defaults to 3.
        num_classes (int): K of the class statistics. Defaults to 1000.
        input_dim (int, optional): width of the layer's input tokens (for
            the input-centroid statistics). Defaults to ``dim``.
        mlp_ratio (float): hidden width of the MLP on Z, as a fraction of D.
        eta (float): step size of the IB step in units of ``phi``'s
            temperature: the descent step on the bound is ``eta / beta``,
            the paper's ``eta`` where its ``phi`` has ``beta = 1``.
            Defaults to 1 (paper).
        tau (float): Gumbel-sigmoid temperature. Defaults to 1.
        detach_score_inputs (bool): while training, compute the IB step's
            scores from the tokens and the direction ``u`` detached, so that
            the loss reaches the backbone through the values of the merged
            tokens and not through their weights (the score MLP and theta
            still learn).  Forwards are unchanged.  False backpropagates
            through the scores into the tokens and, via ``u``, into the
            token mean measured against the frozen class centroids.
            Defaults to False.
    """
    keeps_grid = True
    uses_attention_keys = False

    def __init__(self,
                 dim: int,
                 ratio: float,
                 window_size: int = 3,
                 num_classes: int = 1000,
                 input_dim: Optional[int] = None,
                 mlp_ratio: float = 0.25,
                 eta: float = 1.0,
                 tau: float = 1.0,
                 detach_score_inputs: bool = False):
        super().__init__()
        self.ratio = check_ratio(ratio)
        if window_size < 1:
            raise ValueError(f'window_size must be >= 1, got {window_size}')
        if tau <= 0:
            raise ValueError(f'tau must be > 0, got {tau}')
        self.window_size = window_size
        self.eta = eta
        self.tau = tau
        self.detach_score_inputs = bool(detach_score_inputs)
        self.theta = nn.Parameter(initial_theta(window_size))
        hidden = max(1, int(round(dim * mlp_ratio)))
        self.mlp_in = nn.Linear(dim, hidden)
        self.mlp_act = nn.GELU()
        self.mlp_out = nn.Linear(hidden, dim)
        # zero-initialised output: s = 0 until the MLP learns, so a
        # pretrained network starts from the theta-only merge
        nn.init.zeros_(self.mlp_out.weight)
        nn.init.zeros_(self.mlp_out.bias)
        self.statistics = ClassStatistics(num_classes, dim, input_dim or dim,
                                          self.inference_constants)
        # marks checkpoints whose MLP is that of ``s = -2 eta <MLP, u>``;
        # older ones are converted when loaded
        self.register_buffer('score_convention',
                             torch.tensor(SCORE_CONVENTION))
        self.merging_enabled = True
        self.recording = False
        self.record: Optional[MergeRecord] = None

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Checkpoints without ``score_convention`` were trained with the
        score ``-2 eta beta <MLP(z), u>``: their MLP output layer times
        their ``beta`` gives the same scores (docs/design.md, section 4)."""
        weight, bias = prefix + 'mlp_out.weight', prefix + 'mlp_out.bias'
        beta = state_dict.get(prefix + 'statistics.beta')
        if (prefix + 'score_convention' not in state_dict
                and weight in state_dict and beta is not None):
            for key in (weight, bias):
                if key in state_dict:
                    state_dict[key] = state_dict[key] * beta.to(
                        state_dict[key].dtype)
            state_dict[prefix + 'score_convention'] = torch.tensor(
                SCORE_CONVENTION)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def merged_hw(self, source_hw) -> tuple:
        return merged_grid_size(source_hw[0], source_hw[1], self.ratio)

    # -- the grid ----------------------------------------------------------
    def table(self, source_hw, merged_hw, device) -> WindowTable:
        """Window table of this merge: built once per shape, a constant of
        the graph when traced (see :func:`~ltm_mm.ops.window_table`)."""
        # plain ints (not torch.Size entries): the traced call's arguments
        # must be constants
        source_hw = (int(source_hw[0]), int(source_hw[1]))
        merged_hw = (int(merged_hw[0]), int(merged_hw[1]))
        return window_table(source_hw, merged_hw, self.window_size, device)

    def window_priors(self, table: WindowTable, dtype) -> WindowPriors:
        """:func:`~ltm_mm.ops.mask_weights.window_priors` of theta on
        ``table``."""
        return self.constant(
            ('priors', table.source_hw, table.merged_hw, dtype,
             table.source_index.device),
            lambda: window_priors(self.theta, table, dtype))

    # -- the IB step's scores -----------------------------------------------
    def informativeness(self, tokens: torch.Tensor,
                        u: torch.Tensor) -> torch.Tensor:
        """``s_n = -2 eta <MLP(z_n), u_i>`` as ``(B, N)``."""
        hidden = self.mlp_act(self.mlp_in(tokens))  # (B, N, H)
        projection = self.constant(
            ('projection', hidden.dtype, hidden.device),
            lambda: score_projection(self.mlp_out.weight, self.mlp_out.bias,
                                     self.eta, hidden.dtype))
        return informativeness(hidden, u, projection)

    # -- the forward ---------------------------------------------------------
    def forward(self,
                tokens: torch.Tensor,
                source_hw: tuple,
                inputs: MergeInputs = MergeInputs(),
                *,
                gumbel_noise: Optional[torch.Tensor] = None,
                labels: Optional[torch.Tensor] = None
                ) -> Optional[MergePlan]:
        """Merging plan for ``tokens`` ``(B, N, D)`` on grid ``source_hw``.

        Args:
            inputs: ``input_tokens`` ``(B, N, D_in)``, the layer's input, is
                read for the record while ``recording``; the rest is unused.
            gumbel_noise: ``(B, P, K)`` logistic noise for the training mask;
                sampled when None (in a layer with statistics; one without
                has nothing to explore and keeps what eval keeps).  Pass it
                to make training forwards reproducible.
            labels: optional ``(B,)`` class indices for the IB step.

        Returns:
            A :class:`MergePlan`, or None when nothing is merged (the merged
            grid equals the source grid, or merging is disabled).
        """
        height, width = source_hw
        if tokens.shape[1] != height * width:
            raise ValueError(f'tokens have N={tokens.shape[1]} but the grid '
                             f'is {height}x{width}')
        merged_hw = self.merged_hw(source_hw)
        merges = self.merging_enabled and merged_hw != tuple(source_hw)
        if not (merges or self.recording):
            return None
        table = self.table(source_hw, merged_hw, tokens.device)
        priors = self.window_priors(table, tokens.dtype)
        stats = self.statistics
        if not stats.is_valid():
            stats.warn_missing()
        phi = u = None
        if stats.is_valid() or self.recording:
            # (B, D): token mean of X~0 = G0^T Z, float32 under autocast
            token_mean = stats.prior_token_mean(priors.token_weights, tokens)
            if stats.is_valid():
                phi, u = stats.ib_step(token_mean, table.source_index.shape[0],
                                       labels, merging=merges)
        if self.recording:
            input_tokens = tokens if inputs.input_tokens is None \
                else inputs.input_tokens
            self.record = MergeRecord(
                merged_mean=token_mean.detach(),
                input_mean=input_tokens.mean(1).detach(),
                phi=None if phi is None else phi.detach(),
                num_merged=table.source_index.shape[0],
                num_tokens=tokens.shape[1], merging=merges)
        if not merges:
            return None
        return self.plan(tokens, table, priors, u, gumbel_noise)

    def plan(self, tokens: torch.Tensor, table: WindowTable,
             priors: WindowPriors, u: Optional[torch.Tensor],
             gumbel_noise: Optional[torch.Tensor] = None) -> MergePlan:
        """The :class:`MergePlan` of window logits ``theta + prior (+ s)``:
        ``u`` ``(B, D)`` is the IB step's direction, None without
        statistics (then every sample has the same ``G``)."""
        batch = tokens.shape[0]
        if u is None and not self.training:
            soft, hard = self.constant(
                ('weights', table.source_hw, table.merged_hw,
                 priors.logits.dtype, tokens.device),
                lambda: (torch.softmax(priors.logits, -1),
                         hard_masked_softmax(priors.logits, priors.keep_floor)))
            # (P, K) -> (B, P, K): a constant of the grid
            return MergePlan(hard.expand(batch, -1, -1), table,
                             spread_weights=soft.expand(batch, -1, -1))
        slot_score = None
        if u is not None:
            score_tokens = tokens
            if self.training and self.detach_score_inputs:
                score_tokens, u = tokens.detach(), u.detach()
            # (B, N) -> (B, P, K): each window slot's source token's score
            slot_score = self.informativeness(score_tokens,
                                              u)[:, table.source_index]
        weights, soft_weights = merge_weights(
            priors, slot_score, batch, self.training, self.tau, gumbel_noise)
        return MergePlan(weights, table, spread_weights=soft_weights)

    def extra_repr(self) -> str:
        return (f'ratio={self.ratio}, window_size={self.window_size}, '
                f'eta={self.eta}, tau={self.tau}, '
                f'detach_score_inputs={self.detach_score_inputs}')
