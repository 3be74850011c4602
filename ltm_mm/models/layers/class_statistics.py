"""Per-layer class statistics used by the IB step (docs/design.md,
sections 4 and 6).

Persistent buffers, so they travel in every checkpoint:

* ``centroids`` (K, D): class centroids of the prior-merged token mean;
* ``log_q`` (K, K): ``log Q(a | y)``, smoothed, never ``-inf``;
* ``input_centroids`` (K, D_in): class centroids of the input-token mean
  (only needed to *measure* the IB loss, not to merge);
* ``beta``: inverse temperature of ``phi``, ``1 / (P_ref * m)`` with ``m``
  the (floored) mean within-class squared distance;
* ``valid``: whether the statistics were ever collected;
* ``seen`` (K,) bools: classes that had samples at collection.  ``phi`` and
  the IB step ignore the others (their centroids are placeholders);
* ``reference_num_merged``: ``P_ref``, the mean number of merged tokens per
  sequence at collection (0 = unknown);
* ``merged_at_collection``: whether the layer merged (grid shrank and merging
  was enabled) for any sample the statistics were collected from.

**Resolution.**  ``phi`` uses ``beta * P_ref = 1 / m`` instead of
``beta * P``: ``phi_ia = softmax_a(-||x_i - c_a||^2 / m)`` depends on the
token mean ``x_i`` only, and so does ``u`` (it is a function of ``phi`` and
the centroids), at any input size.  Seen as the bound of docs/design.md
(section 4), this measures the Frobenius distance per merged token on the
reference grid,
``d_a(G) = (P_ref / P) ||G^T Z - 1_P c_a^T||_F^2``; its exact gradient is
``2 beta (P_ref / P) Z u 1_P^T``.  The step size is defined per merged token
(``eta_P = eta P / P_ref``), so the score added to the logits stays
``s_n = -2 eta <MLP(z_n), u_i>`` (the step ``eta / beta``, in units of
``phi``'s temperature), independent of ``P`` as well.  Old
checkpoints without ``P_ref`` fall back to the current ``P`` (exact only at
the pre-training resolution) and say so once when loaded.

**Precision.**  The buffers stay float32 when the module is cast to float16
or bfloat16 (``.half()``); the IB step runs in float32 under any autocast
and returns ``phi`` and ``u`` in the dtype the module was cast to.

Flags the forward reads (``valid``, ``merged_at_collection``) are mirrored in
plain Python attributes, kept right by :meth:`update`, :meth:`set_valid` and
loading, so the forward never reads a tensor to branch (no host sync, no
torch.compile graph break).  Write the buffers through these methods only.

What the IB step derives from the buffers is kept in an
:class:`~.inference_constants.InferenceConstants` store (shared with the
mask module) for eval forwards, and dropped by every write, load or move.

Loading statistics of another shape (e.g. K=1000 into a model built for
K=10) raises a ValueError naming both shapes instead of being skipped.
Checkpoints older than the ``seen``, ``reference_num_merged`` and
``merged_at_collection`` buffers load with: every class seen, ``P_ref``
unknown (current ``P``), merged at collection (no warning possible).
"""
import math
import warnings
from typing import Optional

import torch
from torch import nn

from ltm_mm.ops.information_bottleneck import (PreparedStatistics,
                                               compute_dtype, ib_step_prepared,
                                               prepare_statistics)
from .inference_constants import InferenceConstants, reusable_now

# buffers added after the first checkpoints were written: key -> meaning of
# the default a checkpoint without them loads with
LATER_BUFFERS = ('seen', 'reference_num_merged', 'merged_at_collection')
LOW_PRECISION = (torch.float16, torch.bfloat16)


class ClassStatistics(nn.Module):
    """Class-statistics buffers of one LTM layer (no parameters).

    Args:
        num_classes (int): K, classes of the pre-training data set.
        dim (int): D, width of the merged tokens.
        input_dim (int): D_in, width of the layer's input tokens.
        constants (InferenceConstants, optional): the store of derived
            values to share with the mask module; a new one when None.
    """

    def __init__(self, num_classes: int = 1000, dim: int = 0,
                 input_dim: int = 0,
                 constants: Optional[InferenceConstants] = None):
        super().__init__()
        if num_classes < 1 or dim < 1 or input_dim < 1:
            raise ValueError(f'num_classes, dim and input_dim must be >= 1, '
                             f'got {num_classes}, {dim}, {input_dim}')
        # not `num_classes`: mmdet's NumClassCheckHook compares every
        # module's `num_classes` with the detection data set's classes
        self.num_pretrain_classes = num_classes
        self.register_buffer('centroids', torch.zeros(num_classes, dim))
        self.register_buffer(
            'log_q',
            torch.full((num_classes, num_classes), -math.log(num_classes)))
        self.register_buffer('input_centroids',
                             torch.zeros(num_classes, input_dim))
        self.register_buffer('beta', torch.tensor(1.0))
        self.register_buffer('valid', torch.tensor(False))
        self.register_buffer('seen', torch.ones(num_classes, dtype=torch.bool))
        self.register_buffer('reference_num_merged', torch.tensor(0.0))
        self.register_buffer('merged_at_collection', torch.tensor(True))
        # Python mirrors of the flags the forward reads
        self._valid = False
        self._merged_at_collection = True
        # dtype phi and u are returned in (what the module was cast to)
        self.output_dtype = torch.float32
        # set when loaded from a checkpoint (its key prefix) or by the hook
        self.layer_name: Optional[str] = None
        self._warned_unmerged = False
        self._warned_missing = False
        self.constants = constants if constants is not None else \
            InferenceConstants()

    # -- state ----------------------------------------------------------
    def is_valid(self) -> bool:
        """Python state: no tensor is read (safe under torch.compile)."""
        return self._valid

    def merged_when_collected(self) -> bool:
        return self._merged_at_collection

    @torch.no_grad()
    def set_valid(self, flag: bool) -> None:
        """Mark the statistics (in)valid, buffer and mirror together."""
        self.valid.fill_(bool(flag))
        self._valid = bool(flag)
        self.constants.clear()

    @torch.no_grad()
    def update(self, centroids: torch.Tensor, log_q: torch.Tensor,
               input_centroids: torch.Tensor, beta,
               seen: Optional[torch.Tensor] = None,
               reference_num_merged: float = 0.0,
               merged_at_collection: bool = True) -> None:
        """Write new statistics (shapes checked, values must be finite).

        ``seen`` defaults to every class; ``reference_num_merged`` 0 means
        unknown (``phi`` then uses the current ``P``).
        """
        if seen is None:
            seen = torch.ones_like(self.seen)
        new = dict(centroids=centroids, log_q=log_q,
                   input_centroids=input_centroids,
                   beta=torch.as_tensor(beta, dtype=self.beta.dtype),
                   reference_num_merged=torch.as_tensor(
                       float(reference_num_merged),
                       dtype=self.reference_num_merged.dtype))
        for name, value in new.items():
            current = getattr(self, name)
            if value.shape != current.shape:
                raise ValueError(
                    f'{name}: new statistics have shape {tuple(value.shape)} '
                    f'but this layer holds {tuple(current.shape)}')
            if not bool(torch.isfinite(value).all()):
                raise ValueError(f'{name}: statistics must be finite')
        if not float(new['beta']) > 0:
            raise ValueError(f'beta must be > 0, got {float(new["beta"])}')
        if float(new['reference_num_merged']) < 0:
            raise ValueError('reference_num_merged must be >= 0 (0: unknown)')
        if seen.shape != self.seen.shape:
            raise ValueError(f'seen: new statistics have shape '
                             f'{tuple(seen.shape)} but this layer holds '
                             f'{tuple(self.seen.shape)}')
        if not bool(seen.any()):
            raise ValueError('seen: at least one class must have been seen')
        for name, value in new.items():
            getattr(self, name).copy_(value)
        self.seen.copy_(seen.bool())
        self.merged_at_collection.fill_(bool(merged_at_collection))
        self._merged_at_collection = bool(merged_at_collection)
        self.set_valid(True)

    # -- the IB step ----------------------------------------------------
    def phi_scale_tokens(self, num_merged: int) -> torch.Tensor:
        """``P_ref`` when recorded, else the current ``P`` (scalar tensor;
        a tensor select, not a Python branch)."""
        ref = self.reference_num_merged
        return torch.where(ref > 0, ref, torch.full_like(ref, num_merged))

    def ib_step(self, token_mean: torch.Tensor, num_merged: int,
                labels: Optional[torch.Tensor] = None,
                merging: bool = False):
        """``phi`` (B, K) and ``u`` (B, D) of :func:`ltm_mm.ops.ib_step` with
        these statistics, resolution-independent (``P_ref``), unseen classes
        excluded, computed in float32 and returned in :attr:`output_dtype`.

        Args:
            token_mean: ``(B, D)`` prior-merged token means, any dtype.
            num_merged: the current ``P`` (used only without ``P_ref``).
            labels: optional ``(B,)`` class indices.
            merging: whether the layer merges in this forward; warns once
                when it does but did not while the statistics were collected.
        """
        if merging and not self._merged_at_collection:
            self._warn_unmerged()
        prepared = self._prepared(num_merged, compute_dtype(token_mean.dtype))
        phi, u = ib_step_prepared(token_mean, prepared, labels)
        return phi.to(self.output_dtype), u.to(self.output_dtype)

    def _prepared(self, num_merged: int, dtype) -> PreparedStatistics:
        """The statistics' part of the IB step, kept for eval forwards
        (:mod:`.inference_constants`)."""

        def prepare():
            return prepare_statistics(self.centroids, self.log_q, self.beta,
                                      self.phi_scale_tokens(num_merged),
                                      self.seen, dtype)

        if not reusable_now(training=False):
            return prepare()
        return self.constants.get(
            ('statistics', dtype, num_merged, self.centroids.device), prepare)

    def prior_token_mean(self, weights: torch.Tensor,
                         tokens: torch.Tensor) -> torch.Tensor:
        """``(B, D)`` ``sum_n a_n z_n`` in float32 under any autocast.

        ``weights`` ``(N,)`` are the prior token weights
        (``mean_p (G0^T Z)_p = sum_n a_n z_n``), ``tokens`` ``(B, N, D)``.
        """
        dtype = compute_dtype(tokens.dtype)
        with torch.autocast(tokens.device.type, enabled=False):
            # (N,) @ (B, N, D) -> (B, D); a batched matrix-vector product
            # (einsum is slower on the CPU: docs/speed.md)
            return torch.matmul(weights.to(dtype), tokens.to(dtype))

    def warn_missing(self) -> None:
        """Say once that the IB step is skipped for want of statistics (a
        traced forward cannot warn without a graph break: eager forwards and
        LTMStatisticsHook's checks say it)."""
        if torch.compiler.is_compiling() or self._warned_missing:
            return
        warnings.warn(
            'LTM layer has no valid class statistics yet: the IB step is '
            'skipped and merging uses the learned window logits only. '
            'Collect them with LTMStatisticsHook or load a checkpoint that '
            'has them.', stacklevel=4)
        self._warned_missing = True

    def _warn_unmerged(self) -> None:
        if self._warned_unmerged:
            return
        self._warned_unmerged = True
        name = self.layer_name or (
            f'(K={self.num_pretrain_classes}, D={self.centroids.shape[1]})')
        warnings.warn(
            f'LTM layer {name} merges at this input size but never merged '
            f'while its class statistics were collected (its grid did not '
            f'shrink at the pre-training size, or merging was disabled): its '
            f'window logits are at their initial values, its MLP is untrained '
            f'and its statistics describe unmerged tokens.', stacklevel=4)

    # -- dtype and loading ----------------------------------------------
    def _apply(self, fn, recurse=True):
        """Keep the statistics float32 (or wider) when the module is cast to
        float16 / bfloat16; remember the dtype cast to for the step's
        outputs."""
        self.constants.clear()
        before = dict(self._buffers)
        super()._apply(fn, recurse)
        # a dtype cast maps float16 and float64 alike; a move keeps both
        device = self.beta.device
        probes = [fn(torch.empty(0, dtype=dtype, device=device))
                  for dtype in (torch.float16, torch.float64)]
        if probes[0].dtype == probes[1].dtype:
            self.output_dtype = probes[0].dtype
        for name, old in before.items():
            new = self._buffers.get(name)
            if old is not None and new is not None and \
                    new.dtype in LOW_PRECISION and old.dtype not in \
                    LOW_PRECISION:
                self._buffers[name] = old.to(device=new.device,
                                             dtype=torch.float32)
        return self

    def _load_from_state_dict(self, state_dict, prefix, local_metadata,
                              strict, missing_keys, unexpected_keys,
                              error_msgs):
        for name in ('centroids', 'log_q', 'input_centroids', 'seen'):
            key = prefix + name
            if key not in state_dict:
                continue
            loaded, own = state_dict[key].shape, getattr(self, name).shape
            if loaded != own:
                raise ValueError(
                    f'{key}: the checkpoint holds class statistics of shape '
                    f'{tuple(loaded)} but the model is built for '
                    f'{tuple(own)} '
                    f'(num_classes={self.num_pretrain_classes}). Build '
                    f'the backbone with num_classes={loaded[0]} to use these '
                    f'statistics, or drop the statistics keys to start '
                    f'without them.')
        has_statistics = prefix + 'valid' in state_dict
        if has_statistics:
            self._fill_later_buffers(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, local_metadata,
                                      strict, missing_keys, unexpected_keys,
                                      error_msgs)
        self.layer_name = prefix[:-len('.statistics.')] if prefix.endswith(
            '.statistics.') else prefix.rstrip('.') or None
        self._valid = bool(self.valid)
        self._merged_at_collection = bool(self.merged_at_collection)
        self._warned_unmerged = False
        self.constants.clear()

    def _fill_later_buffers(self, state_dict, prefix) -> None:
        """Defaults for buffers a checkpoint predates (see module doc)."""
        missing = [n for n in LATER_BUFFERS if prefix + n not in state_dict]
        if not missing:
            return
        defaults = dict(
            seen=torch.ones_like(self.seen),
            reference_num_merged=torch.zeros_like(self.reference_num_merged),
            merged_at_collection=torch.ones_like(self.merged_at_collection))
        for name in missing:
            state_dict[prefix + name] = defaults[name]
        if 'reference_num_merged' in missing and bool(state_dict[prefix +
                                                                 'valid']):
            warnings.warn(
                f'LTM statistics {prefix.rstrip(".")} predate the recorded '
                f'reference token count: phi uses the current number of '
                f'merged tokens (exact only at the pre-training resolution), '
                f'every class counts as seen and the layer as merged at '
                f'collection. Re-collect the statistics to make them '
                f'resolution-independent.')

    def extra_repr(self) -> str:
        return (f'num_classes={self.num_pretrain_classes}, '
                f'dim={self.centroids.shape[1]}, '
                f'input_dim={self.input_centroids.shape[1]}')
