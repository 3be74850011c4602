"""Inference latency of models compared in one process.

Wall-clock is not MACs (docs/speed.md): merging trades dense matmuls for
gathers, so LTM must be timed, not only counted.  The models are timed
alternately, one call each in turn (A, B, A, B, ...), after a common
warm-up, so drifts of the machine (frequency scaling, other jobs) hit them
equally; each model's times are summarised by median and interquartile
range.  Two models are also compared round by round
(:func:`paired_ratio`): the median of the per-round ratios ``A_i / B_i``
discounts a burst of load that slows both calls of a round, which the ratio
of the two medians does not.  Forwards run in eval mode under
``torch.inference_mode()``.
"""
import contextlib
import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import torch
from torch import nn


def time_alternating(fns: Sequence[Callable[[], object]], iters: int = 20,
                     warmup: int = 5) -> List[List[float]]:
    """Seconds of each call of each function, calls interleaved.

    Round ``i`` calls ``fns[0]``, ``fns[1]``, ... once each; ``warmup``
    untimed rounds come first.

    Returns:
        ``times[j][i]``: seconds of function ``j`` in timed round ``i``.
    """
    if not fns:
        raise ValueError('nothing to time: pass at least one function')
    if iters < 1 or warmup < 0:
        raise ValueError(f'need iters >= 1 and warmup >= 0, got '
                         f'iters={iters}, warmup={warmup}')
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: List[List[float]] = [[] for _ in fns]
    for _ in range(iters):
        for fn, record in zip(fns, times):
            start = time.perf_counter()
            fn()
            record.append(time.perf_counter() - start)
    return times


AMP_DTYPES = {'fp16': torch.float16, 'bf16': torch.bfloat16}


def timed_forward(model: nn.Module, inputs: torch.Tensor,
                  amp: Optional[str] = None) -> Callable[[], object]:
    """``model(inputs)`` under autocast ``amp`` ('fp16', 'bf16' or None);
    on CUDA it waits for the device, so wall-clock covers the kernels."""
    device = inputs.device

    def forward():
        context = torch.autocast(device.type, dtype=AMP_DTYPES[amp]) \
            if amp else contextlib.nullcontext()
        with context:
            out = model(inputs)
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        return out

    return forward


@dataclass
class LatencyStats:
    """Summary of one model's timings at one batch size.

    Attributes:
        batch_size: images per forward.
        median_ms: median latency of a forward (ms).
        iqr_ms: interquartile range, ``q3_ms - q1_ms`` (ms).
        q1_ms, q3_ms: first and third quartiles (ms).
        throughput: images per second at the median latency.
        iters: number of timed forwards.
        kernels: kernels (CUDA) or compute operators (CPU) of one forward,
            when counted.
        seconds: the timed forwards in seconds, in round order (not part of
            comparisons of two summaries).
    """
    batch_size: int
    median_ms: float
    iqr_ms: float
    q1_ms: float
    q3_ms: float
    throughput: float
    iters: int
    kernels: Optional[int] = None
    seconds: Tuple[float, ...] = field(default=(), compare=False, repr=False)


def _quartiles(values: Sequence[float]) -> Tuple[float, float, float]:
    """``(q1, median, q3)`` (inclusive method; all equal for one value)."""
    median = statistics.median(values)
    if len(values) < 2:
        return median, median, median
    q1, _, q3 = statistics.quantiles(values, n=4, method='inclusive')
    return q1, median, q3


def summarize(seconds: Sequence[float], batch_size: int) -> LatencyStats:
    """:class:`LatencyStats` of per-forward times in seconds."""
    q1, median, q3 = _quartiles([s * 1e3 for s in seconds])
    return LatencyStats(batch_size, median, q3 - q1, q1, q3,
                        batch_size * 1e3 / median, len(seconds),
                        seconds=tuple(seconds))


@dataclass
class RatioStats:
    """Per-round latency ratios ``A_i / B_i`` of two alternately timed
    models: median and quartiles."""
    median: float
    q1: float
    q3: float

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1


def paired_ratio(first: LatencyStats, second: LatencyStats) -> RatioStats:
    """:class:`RatioStats` of the rounds of two models timed alternately
    (:func:`compare_latency`); raises ValueError when their rounds differ."""
    if not first.seconds or len(first.seconds) != len(second.seconds):
        raise ValueError(
            f'paired ratios need the same rounds of both models, got '
            f'{len(first.seconds)} and {len(second.seconds)} timed forwards')
    q1, median, q3 = _quartiles(
        [a / b for a, b in zip(first.seconds, second.seconds)])
    return RatioStats(median, q1, q3)


def compare_latency(models: Sequence[nn.Module],
                    input_size: Tuple[int, int],
                    batch_sizes: Sequence[int] = (1, 8),
                    iters: int = 20,
                    warmup: int = 5,
                    channels: int = 3,
                    seed: int = 0,
                    device='cpu',
                    amp: Optional[str] = None,
                    kernel_counter: Optional[Callable] = None,
                    memory_format=torch.contiguous_format
                    ) -> Dict[int, List[LatencyStats]]:
    """Latency of ``model(x)`` for each model, timed alternately.

    Every model sees the same random ``(batch, channels, H, W)`` input, on
    ``device``, in ``memory_format`` (``torch.channels_last`` for models
    converted to it), under autocast ``amp`` when given.  Models are
    switched to eval mode (and left so); pass compiled models to time them
    compiled.
    ``kernel_counter(fn, device)``, when given, counts each model's kernels
    of one forward after the warm-up (stored as ``LatencyStats.kernels``).

    Returns:
        ``{batch_size: [stats of models[0], stats of models[1], ...]}``.
    """
    for model in models:
        model.eval()  # not chained: mmpretrain backbones return None
    device = torch.device(device)
    generator = torch.Generator().manual_seed(seed)
    results = {}
    with torch.inference_mode():
        for batch_size in batch_sizes:
            inputs = torch.randn(batch_size, channels, *input_size,
                                 generator=generator).to(device)
            inputs = inputs.contiguous(memory_format=memory_format)
            fns = [timed_forward(model, inputs, amp) for model in models]
            times = time_alternating(fns, iters=iters, warmup=warmup)
            stats = [summarize(t, batch_size) for t in times]
            if kernel_counter is not None:
                for stat, fn in zip(stats, fns):
                    stat.kernels = kernel_counter(fn, device)
            results[batch_size] = stats
    return results
