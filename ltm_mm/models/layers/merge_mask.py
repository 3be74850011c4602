"""The learnable mask module of one LTM layer (paper Sec. 3.2, Eq. 3-4).

Given the tokens ``Z`` after a layer's attention, it produces the merging
matrix ``G`` (as a :class:`MergePlan`) from

* learnable window logits ``theta`` (k x k, docs/design.md section 2) plus the
  window table's fixed geometry log-prior, the log area weight of each
  slot, so that the initial ``theta = 0`` merges exactly as area pooling
  onto the merged grid (the ``pool`` merger), and
* one IB-gradient step: ``s_n = -2 eta beta <MLP(z_n), u_i>`` added to every
  window that holds source token ``n`` (skipped, ``s = 0``, until the layer
  has valid class statistics),

then a binary mask, softmax within windows, mask, renormalise.  The keep
decision has its own logits, ``theta + s + KEEP_MARGIN`` without the
geometry prior, so a slot's small area weight never drops it and at
initialisation every window keeps all its tokens.  A slot is kept when its
keep logit is positive (Gumbel-sigmoid with a straight-through estimator
while training the IB step; noise-free in a layer without statistics) or
when it holds the window's largest weight.  Everything is per sample: a
sample's ``G`` never depends on the rest of its batch.

Eval forwards are built to be cheap and traceable: the window table comes
from a per-shape cache (a graph constant under ``torch.compile``), the
theta-only logits and prior token weights are cached per table and theta
version, and the hard mask with its renormalisation is one masked softmax
(:func:`hard_masked_softmax`).  Without statistics the whole ``G`` is a
constant of the grid.  With ``eval_cuda_graphs`` an eager eval forward on
a GPU replays its weights from a CUDA graph per input shape
(:mod:`.eval_graphs`).

Per-forward records for the statistics hook live in ``self.record``, a
:class:`~.merge_record.MergeRecord` (set only while ``self.recording`` is
True).
"""
import warnings
from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import nn

from ltm_mm.ops import (WindowTable, check_ratio, merged_grid_size,
                        unmerge_cover_weights, window_table)
from .class_statistics import ClassStatistics
from .eval_graphs import EvalGraphCache
from .merge_plan import MergePlan
from .merge_record import MergeRecord

# Added to a slot's keep logit ``theta + s``: sigmoid(4) = 0.98, so a slot
# is dropped only once its learned logit has fallen by about 4 (and under
# Gumbel noise at init, 1.8% of the time).
KEEP_MARGIN = 4.0


def initial_theta(window_size: int) -> torch.Tensor:
    """``(k, k)`` zeros: with the window table's log area priors the initial
    merge is exactly area pooling, and every keep logit is ``KEEP_MARGIN``.
    """
    return torch.zeros(window_size, window_size)


def hard_masked_softmax(logits: torch.Tensor,
                        keep_floor: torch.Tensor) -> torch.Tensor:
    """Eval mask and renormalisation in one pass: the softmax of the window
    logits ``(..., K)`` over the kept slots of each window.

    A slot's keep logit ``theta + s + KEEP_MARGIN`` is its window logit
    minus the geometry prior plus ``KEEP_MARGIN``, so it is not negative
    exactly when the logit reaches ``keep_floor = prior - KEEP_MARGIN``
    (broadcast against ``logits``).  A slot is kept when it does, or when it
    holds the window's largest logit (ties at the maximum are all kept):
    ``logits >= min(max, keep_floor)``, which equals masking the window
    softmax with ``(keep >= 0) | argmax`` and renormalising.
    """
    threshold = torch.minimum(logits.amax(-1, keepdim=True), keep_floor)
    dropped = logits < threshold
    return torch.softmax(logits.masked_fill(dropped, float('-inf')), dim=-1)


class WindowPriors(NamedTuple):
    """What a merge's logits take from theta and the grid alone.

    Attributes:
        logits: ``(P, K)`` theta by window slot plus the geometry prior.
        keep_floor: ``(P, K)`` geometry prior minus ``KEEP_MARGIN``: a slot
            is kept at eval when its logit reaches it
            (:func:`hard_masked_softmax`).
        keep_logits: ``(K,)`` ``theta + KEEP_MARGIN`` by window slot, the
            keep logits before the IB step's scores.
        token_weights: ``(N,)`` ``a`` with ``mean_p (G0^T Z)_p = sum_n a_n
            z_n``.
    """
    logits: torch.Tensor
    keep_floor: torch.Tensor
    keep_logits: torch.Tensor
    token_weights: torch.Tensor


class LearnableMergeMask(nn.Module):
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
        eta (float): step size of the IB step. Defaults to 1 (paper).
        tau (float): Gumbel-sigmoid temperature. Defaults to 1.

    Attributes:
        eval_cuda_graphs (bool): replay the eval weights from CUDA graphs
            (:meth:`_graphed_weights`); off by default, set by the
            backbones' ``eval_cuda_graphs``.
        eval_graphs (EvalGraphCache): those graphs.
    """

    def __init__(self,
                 dim: int,
                 ratio: float,
                 window_size: int = 3,
                 num_classes: int = 1000,
                 input_dim: Optional[int] = None,
                 mlp_ratio: float = 0.25,
                 eta: float = 1.0,
                 tau: float = 1.0):
        super().__init__()
        self.ratio = check_ratio(ratio)
        if window_size < 1:
            raise ValueError(f'window_size must be >= 1, got {window_size}')
        if tau <= 0:
            raise ValueError(f'tau must be > 0, got {tau}')
        self.window_size = window_size
        self.eta = eta
        self.tau = tau
        self.theta = nn.Parameter(initial_theta(window_size))
        hidden = max(1, int(round(dim * mlp_ratio)))
        self.mlp_in = nn.Linear(dim, hidden)
        self.mlp_act = nn.GELU()
        self.mlp_out = nn.Linear(hidden, dim)
        # zero-initialised output: s = 0 until the MLP learns, so a
        # pretrained network starts from the theta-only merge
        nn.init.zeros_(self.mlp_out.weight)
        nn.init.zeros_(self.mlp_out.bias)
        self.statistics = ClassStatistics(num_classes, dim, input_dim or dim)
        self.merging_enabled = True
        self.recording = False
        self.record = None
        self._warned_no_statistics = False
        self._prior_cache = {}
        self._projection_cache = {}
        self.eval_cuda_graphs = False
        self.eval_graphs = EvalGraphCache()

    def merged_hw(self, source_hw) -> tuple:
        return merged_grid_size(source_hw[0], source_hw[1], self.ratio)

    # -- what depends only on theta and the grid ---------------------------
    def _table(self, source_hw, merged_hw, device) -> WindowTable:
        """Window table of this merge: cached per shape, a constant of the
        graph when traced (see :func:`~ltm_mm.ops.window_table`)."""
        # plain ints (not torch.Size entries): the traced call's arguments
        # must be constants
        source_hw = (int(source_hw[0]), int(source_hw[1]))
        merged_hw = (int(merged_hw[0]), int(merged_hw[1]))
        return window_table(source_hw, merged_hw, self.window_size, device)

    def _window_priors(self, table: WindowTable, dtype) -> WindowPriors:
        """:class:`WindowPriors` of theta and the geometry of ``table``.

        They change only when theta does, so eval forwards reuse them per
        table (keyed by theta's version counter); training forwards and
        traced forwards compute them (a traced graph fuses them).
        """
        cacheable = not (self.training or torch.compiler.is_compiling()
                         or torch.is_grad_enabled())
        if cacheable:
            key = (id(table), dtype, self.theta._version)
            if self._prior_cache.get('key') == key:
                return self._prior_cache['value']
        slot_theta = self.theta.view(-1).to(dtype)[table.theta_index]  # (K,)
        geometry = table.prior_logits.to(dtype)  # (P, K)
        # (1, K) + (P, K): theta by window slot plus the geometry
        logits = slot_theta[None] + geometry
        prior = torch.softmax(logits, dim=-1)  # G0, (P, K)
        num_sources = table.source_hw[0] * table.source_hw[1]
        # (P, K) -> (N,): each source token's total prior weight
        # (scatter_add rather than index_add: the TorchScript ONNX exporter
        # refuses index_add with repeated indices)
        token_weights = prior.new_zeros(num_sources).scatter_add(
            0, table.source_index.reshape(-1), prior.reshape(-1))
        value = WindowPriors(logits, geometry - KEEP_MARGIN,
                             slot_theta + KEEP_MARGIN,
                             token_weights / table.source_index.shape[0])
        if cacheable:
            self._prior_cache = dict(key=key, value=value, table=table)
        return value

    def _constant_weights(self, priors: WindowPriors) -> tuple:
        """``(P, K)`` soft and hard-masked weights of the theta-only logits,
        kept with the cached priors they come from."""
        cached = self._prior_cache.get('value')
        if cached is not None and cached is priors:
            if 'constant' not in self._prior_cache:
                self._prior_cache['constant'] = (
                    torch.softmax(priors.logits, -1),
                    hard_masked_softmax(priors.logits, priors.keep_floor))
            return self._prior_cache['constant']
        return (torch.softmax(priors.logits, -1),
                hard_masked_softmax(priors.logits, priors.keep_floor))

    def prior_token_weights(self, table) -> torch.Tensor:
        """``(N,)`` a with ``mean_p (G0^T Z)_p = sum_n a_n z_n``."""
        return self._window_priors(table, self.theta.dtype).token_weights

    def _score_projection(self, dtype) -> torch.Tensor:
        """``(D, H + 1)``: ``-2 eta beta [W2 | b2]``, so that one product
        with ``u`` gives both ``W2^T u`` and ``<b2, u>`` scaled.

        It changes only with the MLP's output layer and beta: eval forwards
        reuse it (keyed by their version counters), training and traced
        forwards compute it.
        """
        weight, bias = self.mlp_out.weight, self.mlp_out.bias
        beta = self.statistics.beta
        cacheable = not (torch.is_grad_enabled()
                         or torch.compiler.is_compiling())
        if cacheable:
            key = (dtype, self.eta, weight._version, bias._version,
                   beta._version, weight.data_ptr(), bias.data_ptr(),
                   beta.data_ptr())
            if self._projection_cache.get('key') == key:
                return self._projection_cache['value']
        # (D, H) and (D,) -> (D, H + 1)
        projection = torch.cat([weight, bias[:, None]], dim=1).to(dtype) * (
            -2.0 * self.eta * beta.to(dtype))
        if cacheable:
            self._projection_cache = dict(key=key, value=projection)
        return projection

    def informativeness(self, tokens: torch.Tensor,
                        u: torch.Tensor) -> torch.Tensor:
        """``s_n = -2 eta beta <MLP(z_n), u_i>`` as ``(B, N)``.

        ``<W2 h + b2, u> = <h, W2^T u> + <b2, u>``: projecting ``u`` once per
        sample avoids the MLP's output layer on every token.
        """
        hidden = self.mlp_act(self.mlp_in(tokens))  # (B, N, H)
        num_hidden = hidden.shape[-1]
        # (B, D) @ (D, H + 1) -> (B, H + 1): W2^T u and <b2, u>, with the
        # step's constant
        projected = u.to(hidden.dtype) @ self._score_projection(hidden.dtype)
        # (B, 1, 1) + (B, N, H) @ (B, H, 1) -> (B, N, 1) -> (B, N)
        return torch.baddbmm(projected[:, num_hidden, None, None], hidden,
                             projected[:, :num_hidden, None])[:, :, 0]

    def _slot_scores(self, tokens: torch.Tensor, u: torch.Tensor,
                     table: WindowTable) -> torch.Tensor:
        """``(B, P, K)``: the informativeness score of each window slot's
        source token."""
        score = self.informativeness(tokens, u)  # (B, N)
        # (B, N) -> (B, P, K) by window slot
        return score[:, table.source_index]

    # -- eval forwards replayed from CUDA graphs ---------------------------
    def _replays_graphs(self, tokens: torch.Tensor) -> bool:
        """Whether this forward's weights come from :attr:`eval_graphs`: an
        eval forward on a GPU that merges, records nothing, needs no
        gradient and is not traced (a compiled model has its own graphs)."""
        return (self.eval_cuda_graphs and tokens.is_cuda
                and self.merging_enabled and not self.training
                and not self.recording and not torch.is_grad_enabled()
                and not torch.compiler.is_compiling())

    def _graph_key(self, tokens: torch.Tensor, table: WindowTable) -> tuple:
        """What a captured graph depends on besides its input's values:
        shapes and layout, dtypes and autocast, the table, and the address
        and version of every parameter and buffer (a graph reads them, and
        the caches derived from them, by address)."""
        state = tuple((t.data_ptr(), t._version)
                      for t in (*self.parameters(), *self.buffers()))
        return (tuple(tokens.shape), tokens.stride(), tokens.dtype,
                tokens.device, torch.is_inference_mode_enabled(),
                torch.is_autocast_enabled('cuda'),
                torch.get_autocast_dtype('cuda'), id(table), self.eta,
                self.statistics.output_dtype, state)

    def _graphed_weights(self, tokens: torch.Tensor, table: WindowTable,
                         priors: WindowPriors) -> tuple:
        """``(B, P, K)`` hard-masked and soft weights of an eval forward,
        computed as :meth:`forward` does, and the unmerge's ``(B, N, C)``
        cover weights; replayed from a CUDA graph per input shape once a
        shape repeats (:class:`EvalGraphCache`): the twenty-odd kernels of
        the mask module and the five of the unmerge's weights become one
        graph launch and three copies."""
        stats = self.statistics
        num_merged = table.source_index.shape[0]

        def weights_of(tokens):
            token_mean = stats.prior_token_mean(priors.token_weights, tokens)
            _, u = stats.ib_step(token_mean, num_merged, merging=True)
            # (B, P, K) + (P, K)
            logits = self._slot_scores(tokens, u, table) + priors.logits
            soft_weights = torch.softmax(logits, dim=-1)
            # (2, B, P, K): one output for both, so one copy per replay
            return (torch.stack([
                hard_masked_softmax(logits, priors.keep_floor), soft_weights
            ]),
                    unmerge_cover_weights(soft_weights, table))

        weights, cover_weights = self.eval_graphs(
            self._graph_key(tokens, table), weights_of, (tokens, ),
            keep_alive=lambda: (self._projection_cache.get('value'),
                                stats.cached_preparation()))
        return (*weights.unbind(0), cover_weights)

    def _warn_no_statistics(self):
        # a traced forward cannot warn without a graph break; eager forwards
        # (and LTMStatisticsHook's checks) say it
        if torch.compiler.is_compiling():
            return
        if not self._warned_no_statistics:
            warnings.warn(
                'LTM layer has no valid class statistics yet: the IB step is '
                'skipped and merging uses the learned window logits only. '
                'Collect them with LTMStatisticsHook or load a checkpoint '
                'that has them.', stacklevel=3)
            self._warned_no_statistics = True

    def forward(self,
                tokens: torch.Tensor,
                source_hw: tuple,
                input_tokens: Optional[torch.Tensor] = None,
                gumbel_noise: Optional[torch.Tensor] = None,
                labels: Optional[torch.Tensor] = None
                ) -> Optional[MergePlan]:
        """Merging plan for ``tokens`` ``(B, N, D)`` on grid ``source_hw``.

        Args:
            input_tokens: ``(B, N, D_in)`` the layer's input, only used for
                the record while ``recording``.
            gumbel_noise: ``(B, P, K)`` logistic noise for training; sampled
                when None.  Pass it to make training forwards reproducible.
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
        identity = merged_hw == tuple(source_hw)
        if identity and not self.recording:
            return None
        table = self._table(source_hw, merged_hw, tokens.device)
        priors = self._window_priors(table, tokens.dtype)
        stats = self.statistics
        has_stats = stats.is_valid()
        if (has_stats and not identity and labels is None
                and self._replays_graphs(tokens)):
            weights, soft_weights, cover_weights = self._graphed_weights(
                tokens, table, priors)
            return MergePlan(weights, table, spread_weights=soft_weights,
                             cover_weights=cover_weights)
        phi = u = None
        if has_stats or self.recording:
            # (B, D): token mean of X~0 = G0^T Z, float32 under autocast
            token_mean = stats.prior_token_mean(priors.token_weights, tokens)
            if has_stats:
                phi, u = stats.ib_step(
                    token_mean, table.source_index.shape[0], labels,
                    merging=not identity and self.merging_enabled)
        else:
            self._warn_no_statistics()
        if self.recording:
            input_tokens = tokens if input_tokens is None else input_tokens
            self.record = MergeRecord(
                merged_mean=token_mean.detach(),
                input_mean=input_tokens.mean(1).detach(),
                phi=None if phi is None else phi.detach(),
                num_merged=table.source_index.shape[0],
                num_tokens=tokens.shape[1],
                merging=not identity and self.merging_enabled)
        if identity or not self.merging_enabled:
            return None

        batch = tokens.shape[0]
        if u is None and not self.training:
            # theta and geometry only: G is a constant of the grid
            soft, hard = self._constant_weights(priors)
            return MergePlan(hard.expand(batch, -1, -1), table,
                             spread_weights=soft.expand(batch, -1, -1))
        if u is None:  # (P, K) -> (B, P, K)
            slot_score = None
            logits = priors.logits.expand(batch, -1, -1)
        else:
            slot_score = self._slot_scores(tokens, u, table)  # (B, P, K)
            logits = slot_score + priors.logits
        soft_weights = torch.softmax(logits, dim=-1)
        if self.training:
            # (K,) -> (B, P, K), plus the scores when the IB step ran
            keep = priors.keep_logits.expand_as(logits) if u is None else \
                slot_score + priors.keep_logits
            weights = self._apply_mask(soft_weights, logits, keep,
                                       gumbel_noise, noisy=u is not None)
        else:
            weights = hard_masked_softmax(logits, priors.keep_floor)
        return MergePlan(weights, table, spread_weights=soft_weights)

    def _apply_mask(self, soft_weights: torch.Tensor, logits: torch.Tensor,
                    keep_logits: torch.Tensor,
                    gumbel_noise: Optional[torch.Tensor],
                    noisy: bool) -> torch.Tensor:
        """Training mask: sigmoid of the keep logits with a straight-through
        estimator on the window softmax ``(B, P, K)``, renormalised.

        With ``noisy`` (the IB step runs) the keep logits get logistic noise
        (Gumbel-sigmoid), sampled when ``gumbel_noise`` is None; a layer
        without statistics has nothing to explore and samples none (its
        forward keeps exactly the slots the eval forward keeps), unless
        ``gumbel_noise`` is passed.
        """
        keep_best = F.one_hot(logits.argmax(-1), logits.shape[-1]).bool()
        if gumbel_noise is None and noisy:
            uniform = torch.rand_like(logits).clamp_(1e-6, 1 - 1e-6)
            gumbel_noise = uniform.log() - (-uniform).log1p()
        elif gumbel_noise is not None and gumbel_noise.shape != logits.shape:
            raise ValueError(f'gumbel_noise must have shape '
                             f'{tuple(logits.shape)}, got '
                             f'{tuple(gumbel_noise.shape)}')
        if gumbel_noise is not None:
            keep_logits = keep_logits + gumbel_noise
        soft = torch.sigmoid(keep_logits / self.tau)
        hard = (soft > 0.5) | keep_best
        # straight-through: forward the hard mask, backward the soft one
        mask = hard.to(soft.dtype) + soft - soft.detach()
        weights = soft_weights * mask
        return weights / weights.sum(-1, keepdim=True)

    def extra_repr(self) -> str:
        return (f'ratio={self.ratio}, window_size={self.window_size}, '
                f'eta={self.eta}, tau={self.tau}')
