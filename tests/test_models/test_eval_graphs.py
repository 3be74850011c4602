"""CUDA graphs of the mask module's eval forward (eval_graphs.py).

Without a GPU the cache's bookkeeping (when it captures, replays, drops
graphs, gives up) and the mask module's use of it run with
:class:`CallReplayedEagerly` in place of a captured graph: it keeps its own
input copies and outputs as a graph does, and recomputes them on replay.
The tests marked ``cuda`` capture real graphs.
"""
import copy
import pickle
import types

import pytest
import torch

from ltm_mm.analysis.synthetic_statistics import fill_synthetic_statistics
from ltm_mm.models.layers.eval_graphs import (EvalGraphCache,
                                              install_eval_cuda_graphs,
                                              installed_graphs)
from small_ltm_backbones import small_ltm_backbone
from small_ltm_layer import DIM, small_ltm_layer

cuda = pytest.mark.skipif(not torch.cuda.is_available(),
                          reason='needs a CUDA device')


class CallReplayedEagerly:
    """A captured call's interface without a GPU: replays recompute ``fn``
    on the call's own input copies and count themselves."""

    def __init__(self, fn, inputs):
        self.fn = fn
        self.inputs = tuple(x.clone() for x in inputs)
        self.replays = 0

    def replay(self, inputs):
        for static, value in zip(self.inputs, inputs):
            static.copy_(value)
        self.replays += 1
        return tuple(out.clone() for out in self.fn(*self.inputs))


class CacheWithoutGPU(EvalGraphCache):
    """An :class:`EvalGraphCache` whose captures are
    :class:`CallReplayedEagerly`; ``replay_offset`` makes their replays
    differ from eager results, ``fail`` makes every capture fail."""

    def __init__(self, *args, replay_offset=0.0, fail=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.replay_offset = replay_offset
        self.fail = fail
        self.captured = []

    def capture(self, fn, inputs):
        if self.fail:
            raise RuntimeError('operation not permitted when stream is '
                               'capturing')
        offset = self.replay_offset
        call = CallReplayedEagerly(
            lambda *xs: tuple(y + offset for y in fn(*xs)), inputs)
        self.captured.append(call)
        return call


def double(x):
    return (2 * x, )


def test_captures_on_the_second_call_and_replays_after():
    cache = CacheWithoutGPU(capture_after=2)
    x = torch.arange(4.)
    assert torch.equal(cache('k', double, (x, ))[0], 2 * x)
    assert not cache.graphs and not cache.captured
    assert torch.equal(cache('k', double, (x, ))[0], 2 * x)
    assert list(cache.graphs) == ['k']
    assert cache.captured[0].replays == 1  # the capture's self-check
    y = torch.tensor([5., -1., 0., 2.])
    (out, ) = cache('k', double, (y, ))
    assert torch.equal(out, 2 * y) and cache.captured[0].replays == 2
    # callers get copies: the next replay does not change what they hold
    cache('k', double, (x, ))
    assert torch.equal(out, 2 * y)


def test_keys_are_counted_apart_and_graphs_bounded():
    cache = CacheWithoutGPU(capture_after=2, max_graphs=2, max_keys=3)
    x = torch.ones(3)
    for key in 'abcd':  # 'd' pushes 'a' out of the counted keys
        cache(key, double, (x, ))
    cache('a', double, (x, ))  # counted afresh, and 'b' pushed out
    assert not cache.graphs
    cache('c', double, (x, ))
    cache('d', double, (x, ))
    assert list(cache.graphs) == ['c', 'd']
    cache('c', double, (x, ))  # replayed: now the most recently used
    cache('a', double, (x, ))  # captured; 'd', least recently used, dropped
    assert list(cache.graphs) == ['c', 'a'] and len(cache.captured) == 3
    cache('b', double, (x, ))
    assert list(cache.graphs) == ['c', 'a']  # 'b' was pushed out: first call


def test_a_replay_that_differs_turns_the_cache_off():
    cache = CacheWithoutGPU(replay_offset=1.0)
    x = torch.arange(3.)
    cache('k', double, (x, ))
    with pytest.warns(UserWarning, match='replay differed'):
        (out, ) = cache('k', double, (x, ))
    assert torch.equal(out, 2 * x)
    assert not cache.graphs and 'differed' in cache.disabled_because
    cache('k', double, (x, ))
    assert len(cache.captured) == 1  # never tried again


def test_a_refused_capture_turns_the_cache_off():
    cache = CacheWithoutGPU(fail=True, capture_after=1)
    x = torch.arange(3.)
    with pytest.warns(UserWarning, match='capturing it failed'):
        (out, ) = cache('k', double, (x, ))
    assert torch.equal(out, 2 * x)
    assert 'stream is capturing' in cache.disabled_because


@pytest.mark.parametrize('kwargs', [dict(capture_after=0),
                                    dict(max_graphs=0), dict(max_keys=0)])
def test_bad_settings_are_refused(kwargs):
    with pytest.raises(ValueError, match='must be >= 1'):
        EvalGraphCache(**kwargs)


def graphed_layer():
    """:func:`small_ltm_layer` whose eval weights go through a
    :class:`CacheWithoutGPU` as they would through CUDA graphs, on the
    CPU."""
    mask = small_ltm_layer()
    install_eval_cuda_graphs(mask, devices=('cpu', ),
                             make_cache=CacheWithoutGPU)
    return mask


def cache_of(mask) -> CacheWithoutGPU:
    return installed_graphs(mask).graphs()


def test_mask_weights_through_the_cache_equal_the_eager_forward():
    mask, graphed = small_ltm_layer(), graphed_layer()
    with torch.inference_mode():
        for seed in range(4):
            tokens = torch.randn(
                3, 400, DIM, generator=torch.Generator().manual_seed(seed))
            want, got = mask(tokens, (20, 20)), graphed(tokens, (20, 20))
            torch.testing.assert_close(got.weights, want.weights)
            torch.testing.assert_close(got.spread_weights,
                                       want.spread_weights)
            assert want.cover_weights is None
            merged = got.merge(tokens)
            torch.testing.assert_close(merged, want.merge(tokens))
            torch.testing.assert_close(got.unmerge(merged),
                                       want.unmerge(merged))
    # one capture, replayed by the later calls (and its self-check)
    assert len(cache_of(graphed).captured) == 1
    assert cache_of(graphed).captured[0].replays == 3


def test_eval_after_changed_weights_or_new_statistics_captures_again():
    """Graphs live with the inference constants: ``eval()`` after an
    in-place change (as ``EMAHook``'s swap), or new statistics, drops
    them, and the next forwards capture the new weights."""
    mask, graphed = small_ltm_layer(), graphed_layer()
    tokens = torch.randn(2, 400, DIM)

    def compare():
        with torch.inference_mode():
            for _ in range(2):
                got = graphed(tokens, (20, 20))
            torch.testing.assert_close(got.weights,
                                       mask(tokens, (20, 20)).weights)

    compare()
    first = cache_of(graphed)
    with torch.no_grad():
        for layer in (mask, graphed):
            layer.theta.data.copy_(torch.linspace(-3, 3, 9).view(3, 3))
            layer.eval()
    compare()
    assert len(first.captured) == 1 and cache_of(graphed) is not first
    assert len(cache_of(graphed).captured) == 1
    for layer in (mask, graphed):
        fill_synthetic_statistics(layer, seed=1)
    compare()


def test_copied_and_pickled_masks_start_without_graphs():
    graphed = graphed_layer()
    tokens = torch.randn(2, 400, DIM)
    with torch.inference_mode():
        for _ in range(2):
            graphed(tokens, (20, 20))
    assert len(cache_of(graphed).graphs) == 1
    copied = copy.deepcopy(graphed)
    real = EvalGraphCache(max_graphs=3)
    real.graphs['k'] = lambda: 'a graph of closures'
    real.calls['j'] = 1
    loaded = pickle.loads(pickle.dumps(real))
    assert not loaded.graphs and not loaded.calls and loaded.max_graphs == 3
    assert len(copied.inference_constants) == 0
    assert installed_graphs(copied).mask is copied
    assert len(cache_of(graphed).graphs) == 1
    with torch.inference_mode():
        torch.testing.assert_close(copied(tokens, (20, 20)).weights,
                                   graphed(tokens, (20, 20)).weights)


def test_only_plain_eval_forwards_on_a_gpu_use_graphs():
    mask = small_ltm_layer()
    wrapper = install_eval_cuda_graphs(mask)
    tokens = torch.randn(2, 400, DIM)
    on_gpu = types.SimpleNamespace(device=torch.device('cuda'))

    def graphed(tokens=on_gpu, **kwargs):
        return wrapper.graphed(tokens, (20, 20), **kwargs)

    with torch.no_grad():
        assert graphed()
        assert not graphed(tokens)  # a CPU tensor
        assert not graphed(labels=torch.zeros(2))
        mask.recording = True  # the statistics hook reads this forward
        assert not graphed()
        mask.recording, mask.merging_enabled = False, False
        assert not graphed()
        mask.merging_enabled = True
        mask.train()
        assert not graphed()
        mask.eval()
        assert not wrapper.graphed(on_gpu, (2, 2))  # nothing to merge
    assert not graphed()  # gradients wanted
    mask.statistics.set_valid(False)
    with torch.no_grad():
        assert not graphed()
    install_eval_cuda_graphs(mask, False)
    assert installed_graphs(mask) is None and 'forward' not in vars(mask)


def test_cpu_and_training_forwards_never_use_graphs():
    mask = small_ltm_layer()
    install_eval_cuda_graphs(mask)
    tokens = torch.randn(2, 400, DIM)
    with torch.inference_mode():
        mask(tokens, (20, 20))
        mask(tokens, (20, 20))
    assert 'cuda_graphs' not in mask.inference_constants
    mask.train()
    mask(tokens, (20, 20))
    assert 'cuda_graphs' not in mask.inference_constants


@pytest.mark.parametrize('name', ['mobilevit', 'efficientvit'])
def test_backbone_eval_forwards_go_through_the_graphs(name):
    """The blocks hand each mask module its layer's input tokens (read only
    while recording); that must not keep their forwards off the graphs."""
    torch.manual_seed(0)
    model = small_ltm_backbone(name, ratio=0.5)
    fill_synthetic_statistics(model)
    model.eval()
    merged = []
    masks = model.merge_mask_modules()
    handles = [m.register_forward_hook(
        lambda module, args, plan: merged.append(module)
        if plan is not None else None) for m in masks]
    x = torch.randn(2, 3, 128, 160)
    with torch.inference_mode():
        want = model(x)
    for handle in handles:
        handle.remove()
    for mask in masks:
        install_eval_cuda_graphs(mask, devices=('cpu', ),
                                 make_cache=CacheWithoutGPU)
    with torch.inference_mode():
        model(x)  # counted
        got = model(x)  # captured (and replayed once by the self-check)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b)
    assert len(merged) > 0
    for mask in masks:
        expected = 1 if mask in merged else 0
        assert len(cache_of(mask).captured) == expected


@cuda
@pytest.mark.parametrize('amp', [None, torch.float16])
def test_cuda_graphs_equal_eager_mask_weights(amp):
    mask = small_ltm_layer().cuda()
    install_eval_cuda_graphs(mask)
    eager = small_ltm_layer().cuda()
    with torch.inference_mode(), torch.autocast(
            'cuda', dtype=amp or torch.float16, enabled=amp is not None):
        for seed in range(5):
            tokens = torch.randn(4, 400, DIM, device='cuda',
                                 generator=torch.Generator('cuda').manual_seed(
                                     seed)).to(amp or torch.float32)
            got, want = mask(tokens, (20, 20)), eager(tokens, (20, 20))
            # the same kernels, though cuBLAS may pick other algorithms
            # while capturing
            close = dict(atol=1e-4, rtol=1e-3)
            torch.testing.assert_close(got.weights, want.weights, **close)
            torch.testing.assert_close(got.spread_weights,
                                       want.spread_weights, **close)
            merged = got.merge(tokens)
            torch.testing.assert_close(got.unmerge(merged),
                                       want.unmerge(merged), **close)
    assert len(installed_graphs(mask).graphs().graphs) == 1
    assert installed_graphs(mask).graphs().disabled_because is None


@cuda
@pytest.mark.parametrize('name', ['mobilevit', 'efficientvit'])
def test_cuda_graphs_equal_eager_backbone_outputs(name):
    torch.manual_seed(0)
    model = small_ltm_backbone(name, ratio=0.5)
    fill_synthetic_statistics(model)
    model = model.cuda().eval()
    images = torch.randn(3, 2, 3, 128, 160, device='cuda')
    with torch.inference_mode():
        want = [model(x) for x in images]
        model.use_eval_cuda_graphs(True)
        got = [model(x) for x in images]
    for outs_got, outs_want in zip(got, want):
        for a, b in zip(outs_got, outs_want):
            torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)
    masks = model.merge_mask_modules()
    caches = [installed_graphs(m).graphs() for m in masks]
    assert all(c.disabled_because is None for c in caches)
    assert sum(len(c.graphs) for c in caches) > 0
