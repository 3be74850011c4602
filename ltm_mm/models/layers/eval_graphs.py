"""Replaying a fixed-shape eval computation from CUDA graphs.

An eager GPU forward whose kernels are small is bound by the host: every
launch costs tens of microseconds of Python and driver time whatever the
tensor sizes (docs/speed.md measures it on an H200).  A computation that
launches the same kernels for the same input shapes can be captured once
into a CUDA graph and replayed with one launch.  :class:`EvalGraphCache` does that per key (the caller's shapes,
dtypes and autocast state):

* the first ``capture_after - 1`` calls of a key run eagerly, so inputs of
  a size seen only once (variable-size detection) never pay for a capture;
* the next call runs eagerly, then captures the computation on copies of
  its inputs, replays the graph on the same inputs and compares the result
  with the eager one; a capture the device refuses (an operator that waits
  for the host) or a replay that differs turns the cache off for good, with
  one warning, and everything runs eagerly from then on;
* later calls copy their inputs into the graph's inputs, replay it and
  return copies of its outputs (the graph overwrites them on its next
  replay, so callers may keep what they get);
* at most ``max_graphs`` graphs are kept, the least recently used dropped.

The computation must be a function of its tensor inputs and of tensors that
stay at the same addresses while its key is unchanged (parameters, buffers,
stored constants).  It must not synchronise with the host, use random
numbers or keep state.  Autocast's weight cache is off while capturing, so
no cast weight made in the graph's memory outlives it.

:func:`install_eval_cuda_graphs` puts a :class:`GraphedMaskForward` in
front of one mask module's forward, from outside: the mask module knows
nothing of graphs.  Its graphs are kept in the module's
:class:`~.inference_constants.InferenceConstants`, with the constants they
read, and are dropped with them (``model.eval()``, loading, new statistics).
"""
import warnings
from collections import OrderedDict
from typing import Callable, Hashable, Optional, Sequence, Tuple

import torch

from ltm_mm.ops import unmerge_cover_weights
from .merge_plan import MergePlan
from .merger_contract import MergeInputs

# tolerances of the capture's self-check on weights in [0, 1]: above what
# another cuBLAS algorithm could change in half precision, far below what a
# graph reading stale memory gives
CHECK_RTOL = 1e-2
CHECK_ATOL = 1e-3


def autocast_without_cache(device_type: str):
    """The current autocast state of ``device_type``, with its weight cache
    off (required while capturing a CUDA graph)."""
    return torch.autocast(device_type,
                          dtype=torch.get_autocast_dtype(device_type),
                          enabled=torch.is_autocast_enabled(device_type),
                          cache_enabled=False)


class CapturedCall:
    """One CUDA graph of ``fn`` with its own input and output tensors.

    Args:
        fn: the computation, ``fn(*inputs) -> tuple of tensors``.
        inputs: example inputs (CUDA tensors); copies of them become the
            graph's inputs.
    """

    def __init__(self, fn: Callable, inputs: Sequence[torch.Tensor]):
        device = inputs[0].device
        self.fn = fn
        # clone keeps each input's strides, so the graph sees the layout
        # that its key was made for
        self.inputs = tuple(x.clone() for x in inputs)
        with torch.cuda.device(device):
            # warm up on a side stream, as torch.cuda.graph asks, and capture
            # on the same one: BLAS handles and workspaces are made per
            # stream, and making one while capturing can fail
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side), autocast_without_cache('cuda'):
                fn(*self.inputs)
            torch.cuda.current_stream().wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            # thread_local: what other threads do meanwhile (a data loader's
            # pinned-memory thread) must not break this capture
            with torch.cuda.graph(self.graph, stream=side,
                                  capture_error_mode='thread_local'), \
                    autocast_without_cache('cuda'):
                self.outputs = tuple(fn(*self.inputs))

    def replay(self, inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor]:
        """``fn(*inputs)``: copy in, one graph launch, copy out."""
        for static, value in zip(self.inputs, inputs):
            static.copy_(value)
        self.graph.replay()
        return tuple(output.clone() for output in self.outputs)


class EvalGraphCache:
    """Per-key CUDA graphs of one eval computation (module docstring).

    Args:
        capture_after (int): capture on this call of a key (>= 1); the
            calls before it run eagerly. Defaults to 2.
        max_graphs (int): graphs kept (>= 1). Defaults to 4.
        max_keys (int): keys whose calls are counted before capture.
            Defaults to 64.
    """

    def __init__(self, capture_after: int = 2, max_graphs: int = 4,
                 max_keys: int = 64):
        if capture_after < 1 or max_graphs < 1 or max_keys < 1:
            raise ValueError(
                f'capture_after, max_graphs and max_keys must be >= 1, got '
                f'{capture_after}, {max_graphs}, {max_keys}')
        self.capture_after = capture_after
        self.max_graphs = max_graphs
        self.max_keys = max_keys
        self.graphs: 'OrderedDict[Hashable, CapturedCall]' = OrderedDict()
        self.calls: 'OrderedDict[Hashable, int]' = OrderedDict()
        self.disabled_because = None

    def __getstate__(self) -> dict:
        # graphs hold device memory and closures: a copied or pickled model
        # (deepcopy for EMA, torch.save of a module) starts without them
        state = self.__dict__.copy()
        state.update(graphs=OrderedDict(), calls=OrderedDict())
        return state

    def __call__(self, key: Hashable, fn: Callable,
                 inputs: Sequence[torch.Tensor]) -> Tuple[torch.Tensor]:
        """``tuple(fn(*inputs))``, replayed from a graph when ``key`` has
        one."""
        captured = self.graphs.get(key)
        if captured is not None:
            self.graphs.move_to_end(key)
            return captured.replay(inputs)
        outputs = tuple(fn(*inputs))
        if self.disabled_because is None and \
                self._count(key) >= self.capture_after:
            self._capture(key, fn, inputs, outputs)
        return outputs

    def _count(self, key: Hashable) -> int:
        count = self.calls.pop(key, 0) + 1
        self.calls[key] = count
        while len(self.calls) > self.max_keys:
            self.calls.popitem(last=False)
        return count

    def capture(self, fn: Callable,
                inputs: Sequence[torch.Tensor]) -> CapturedCall:
        """A :class:`CapturedCall` of ``fn`` (overridden by tests that run
        the cache's bookkeeping without a GPU)."""
        return CapturedCall(fn, inputs)

    def _capture(self, key, fn, inputs, expected) -> None:
        self.calls.pop(key, None)
        try:
            captured = self.capture(fn, inputs)
            replayed = captured.replay(inputs)
        except Exception as error:  # noqa: BLE001 -- e.g. an operator
            # that synchronises: said, and eager from now on
            self.disable(f'capturing it failed ({type(error).__name__}: '
                         f'{error})')
            return
        same = len(replayed) == len(expected) and all(
            got.shape == want.shape and got.dtype == want.dtype
            and torch.allclose(got, want, rtol=CHECK_RTOL, atol=CHECK_ATOL)
            for got, want in zip(replayed, expected))
        if not same:
            self.disable('its replay differed from the eager result')
            return
        self.graphs[key] = captured
        while len(self.graphs) > self.max_graphs:
            self.graphs.popitem(last=False)

    def disable(self, reason: str) -> None:
        """Drop every graph and run eagerly from now on, saying why once."""
        self.graphs.clear()
        self.calls.clear()
        self.disabled_because = reason
        warnings.warn(
            f'CUDA graphs of the LTM mask module are off: {reason}. Eval '
            f'forwards run eagerly (same results, more host time per '
            f'layer); set eval_cuda_graphs=False to silence this.',
            stacklevel=3)


class GraphedMaskForward:
    """A mask module's forward whose eval weights (IB step, window softmax,
    hard mask and the unmerge's cover weights) come from an
    :class:`EvalGraphCache` kept in the module's inference constants.

    Only an eval forward on one of ``devices`` that merges with valid
    statistics, records nothing, needs no gradient, has no labels or noise
    and is not traced goes through the graphs; every other forward is the
    module's own.

    Args:
        mask: the :class:`~.merge_mask.LearnableMergeMask`.
        devices: device types whose forwards are graphed.
        make_cache: builds the graph cache (tests pass one that needs no
            GPU).
    """

    def __init__(self, mask, devices: Sequence[str] = ('cuda', ),
                 make_cache: Callable[[], EvalGraphCache] = EvalGraphCache):
        self.mask = mask
        self.devices = tuple(devices)
        self.make_cache = make_cache
        # kept across dropped caches: a refused capture is not retried
        self.disabled_because: Optional[str] = None

    def graphs(self) -> EvalGraphCache:
        """The graph cache of the module's current inference constants."""

        def fresh() -> EvalGraphCache:
            cache = self.make_cache()
            cache.disabled_because = self.disabled_because
            return cache

        return self.mask.inference_constants.get('cuda_graphs', fresh)

    def graphed(self, tokens, source_hw, gumbel_noise=None,
                labels=None) -> bool:
        """Whether this forward replays a graph.  The layer's input tokens
        (``MergeInputs``) are read only while recording, which is never
        graphed, so they do not matter."""
        mask = self.mask
        return (tokens.device.type in self.devices and not mask.training
                and not mask.recording and mask.merging_enabled
                and mask.statistics.is_valid()
                and gumbel_noise is None and labels is None
                and not torch.is_grad_enabled()
                and not torch.compiler.is_compiling()
                and mask.merged_hw(source_hw) != tuple(source_hw))

    def __call__(self, tokens: torch.Tensor, source_hw: tuple,
                 inputs: MergeInputs = MergeInputs(), *, gumbel_noise=None,
                 labels=None):
        mask = self.mask
        forward = type(mask).forward
        if not self.graphed(tokens, source_hw, gumbel_noise, labels):
            return forward(mask, tokens, source_hw, inputs,
                           gumbel_noise=gumbel_noise, labels=labels)
        table = mask.table(source_hw, mask.merged_hw(source_hw),
                           tokens.device)

        def weights_of(tokens):
            plan = forward(mask, tokens, source_hw)
            # (2, B, P, K): one output for both, so one copy per replay
            return (torch.stack([plan.weights, plan.spread_weights]),
                    unmerge_cover_weights(plan.spread_weights, table))

        key = (tuple(tokens.shape), tokens.stride(), tokens.dtype,
               tokens.device, tuple(source_hw),
               torch.is_inference_mode_enabled(),
               torch.is_autocast_enabled(tokens.device.type),
               torch.get_autocast_dtype(tokens.device.type),
               mask.statistics.output_dtype)
        graphs = self.graphs()
        weights, cover_weights = graphs(key, weights_of, (tokens, ))
        self.disabled_because = graphs.disabled_because
        return MergePlan(weights[0], table, spread_weights=weights[1],
                         cover_weights=cover_weights)


def install_eval_cuda_graphs(mask, enabled: bool = True,
                             **kwargs) -> Optional[GraphedMaskForward]:
    """Put a :class:`GraphedMaskForward` in front of ``mask``'s forward
    (``enabled``), or restore its own forward.  ``kwargs`` go to
    :class:`GraphedMaskForward`.  Returns the installed wrapper."""
    mask.__dict__.pop('forward', None)
    mask.drop_inference_constants()
    if not enabled:
        return None
    wrapper = GraphedMaskForward(mask, **kwargs)
    mask.forward = wrapper
    return wrapper


def installed_graphs(mask) -> Optional[GraphedMaskForward]:
    """The :class:`GraphedMaskForward` installed on ``mask``, if any."""
    wrapper = mask.__dict__.get('forward')
    return wrapper if isinstance(wrapper, GraphedMaskForward) else None
