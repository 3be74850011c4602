"""The eval hot path of an LTM layer: few operators, no table building, no
host synchronisation; checked by counting, not timing."""
import warnings

import pytest
import torch

import ltm_mm.ops.axis_windows as axis_windows_module
import ltm_mm.ops.merge as merge_ops
from ltm_mm.analysis.kernel_count import count_cpu_operators
from ltm_mm.analysis.synthetic_statistics import fill_synthetic_statistics
from ltm_mm.models.layers import LearnableMergeMask
from ltm_mm.models.layers.ltm_mobilevit_block import LTMMobileVitBlock
from cpu_compiler import NEEDS_CXX
from small_ltm_backbones import NAMES, small_ltm_backbone
from small_ltm_layer import DIM, merge_and_unmerge, small_ltm_layer

@pytest.mark.parametrize('with_statistics,budget', [(True, 30), (False, 7)])
def test_an_ltm_layer_adds_a_small_fixed_number_of_operators(
        with_statistics, budget):
    """Mask module + merge + unmerge of one layer in eval, after the first
    call: a few dozen operators with the IB step, a handful without."""
    mask = small_ltm_layer(with_statistics)
    tokens = torch.randn(4, 400, DIM)
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        merge_and_unmerge(mask, tokens)
        merge_and_unmerge(mask, tokens[:1])
        count = count_cpu_operators(lambda: merge_and_unmerge(mask, tokens))
        # independent of the batch: the same operators for 1 or 4 sequences
        alone = count_cpu_operators(
            lambda: merge_and_unmerge(mask, tokens[:1]))
    assert count == alone
    assert count <= budget, f'{count} operators per LTM layer'


def test_eval_forwards_build_no_table_and_reuse_theta_priors(monkeypatch):
    mask = small_ltm_layer()
    tokens = torch.randn(2, 400, DIM)
    with torch.inference_mode():
        first = mask(tokens, (20, 20))
        calls = []
        monkeypatch.setattr(axis_windows_module, 'axis_windows',
                            lambda *a: calls.append(a))
        again = mask(tokens, (20, 20)).weights
        assert not calls  # tables come from the cache
        stored = mask.window_priors(first.table, tokens.dtype)
        assert stored is mask.window_priors(first.table, tokens.dtype)
    torch.testing.assert_close(first.weights, again, rtol=0, atol=0)


@pytest.mark.parametrize('change', ['theta', 'mlp_weight', 'mlp_bias',
                                    'beta'])
def test_eval_after_an_in_place_change_uses_the_new_weights(change):
    """Eval forwards reuse the window priors and ``-2 eta [W2 | b2]``;
    after a change in place (``EMAHook`` swaps parameters with
    ``p.data.copy_()``), ``eval()`` brings the new values in."""
    mask = small_ltm_layer()
    tokens = torch.randn(2, 400, DIM)
    u = torch.randn(2, DIM)

    def outputs():  # the merge weights and the IB step's scores
        return torch.cat([mask(tokens, (20, 20)).weights.flatten(),
                          mask.informativeness(tokens, u).flatten()])

    with torch.inference_mode():
        before = outputs()
    with torch.no_grad():
        if change == 'theta':
            mask.theta.data.copy_(torch.linspace(-2.0, 2.0, 9).view(3, 3))
        elif change == 'mlp_weight':
            mask.mlp_out.weight.data.copy_(mask.mlp_out.weight * 30.0)
        elif change == 'mlp_bias':
            mask.mlp_out.bias.data.copy_(torch.ones(DIM))
        else:
            mask.statistics.beta.data.copy_(mask.statistics.beta * 300.0)
    with torch.inference_mode():
        stale = outputs()
    assert torch.equal(stale, before)  # not seen without eval()
    mask.eval()
    with torch.inference_mode():
        after = outputs()
    with torch.enable_grad():  # gradients on: nothing reused, computed
        reference = outputs().detach()
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, reference)


@pytest.mark.parametrize('name', NAMES)
def test_an_ema_parameter_swap_then_eval_equals_a_fresh_model(name):
    """mmengine's ``EMAHook`` swaps the averaged parameters in with
    ``p.data.copy_()`` before validation; the loop then calls
    ``model.eval()``.  The outputs equal a model built with those
    weights."""
    torch.manual_seed(0)
    model = small_ltm_backbone(name)
    fill_synthetic_statistics(model)
    x = torch.randn(2, 3, 128, 128)
    model.eval()
    with torch.inference_mode():
        model(x)  # fills the inference constants
    params = dict(model.named_parameters())
    averaged = {k: v + 0.05 * torch.randn_like(v) if k in params else v
                for k, v in model.state_dict().items()}
    fresh = small_ltm_backbone(name)
    fresh.load_state_dict(averaged)
    fresh.eval()
    with torch.no_grad():
        for key, value in averaged.items():
            if key in params:
                params[key].data.copy_(value)
    model.eval()
    with torch.inference_mode():
        got, want = model(x), fresh(x)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_statistics_updates_and_loading_drop_the_inference_constants():
    mask = small_ltm_layer()
    tokens = torch.randn(2, 400, DIM)
    with torch.inference_mode():
        mask(tokens, (20, 20))
    assert len(mask.inference_constants) > 0
    fill_synthetic_statistics(mask, seed=3)
    assert len(mask.inference_constants) == 0
    with torch.inference_mode():
        after_update = mask(tokens, (20, 20)).weights
    with torch.no_grad():
        torch.testing.assert_close(after_update,
                                   mask(tokens, (20, 20)).weights)
    other = small_ltm_layer()
    fill_synthetic_statistics(other, seed=4)
    mask.load_state_dict(other.state_dict())
    assert len(mask.inference_constants) == 0
    with torch.inference_mode():
        torch.testing.assert_close(mask(tokens, (20, 20)).weights,
                                   other(tokens, (20, 20)).weights,
                                   rtol=0, atol=0)
    assert len(mask.inference_constants) > 0
    mask.double()  # a cast drops them too
    assert len(mask.inference_constants) == 0
    with torch.inference_mode():
        assert mask(tokens.double(), (20, 20)).weights.dtype == torch.float64


@pytest.mark.parametrize('hw', [(128, 128), (96, 160)])
@pytest.mark.parametrize('name', NAMES)
def test_backbone_eval_forward_traces_as_one_graph(name, hw):
    """``torch._dynamo.explain``: no graph break (window tables become
    constants of the graph, statistics validity is Python state)."""
    torch.manual_seed(0)
    model = small_ltm_backbone(name)
    fill_synthetic_statistics(model)
    model.eval()
    torch._dynamo.reset()
    with torch.no_grad():
        explanation = torch._dynamo.explain(model)(torch.randn(1, 3, *hw))
    assert explanation.graph_break_count == 0, [
        r.reason for r in explanation.break_reasons]
    assert explanation.graph_count == 1


@pytest.mark.parametrize('mode,with_statistics', [('train', True),
                                                   ('train', False),
                                                   ('eval', False)])
@pytest.mark.parametrize('name', NAMES)
def test_other_forwards_trace_as_one_graph(name, mode, with_statistics):
    """Training forwards (Gumbel noise, straight-through mask, IB step)
    and forwards without statistics (their one-off warning is left to eager
    forwards) trace without graph breaks too."""
    torch.manual_seed(0)
    model = small_ltm_backbone(name)
    if with_statistics:
        fill_synthetic_statistics(model)
    model.train(mode == 'train')
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(model)(torch.randn(2, 3, 128, 128))
    assert explanation.graph_break_count == 0, [
        r.reason for r in explanation.break_reasons]
    assert explanation.graph_count == 1


def test_tables_first_built_under_inference_mode_serve_training():
    mask = LearnableMergeMask(DIM, 0.7, num_classes=10)
    tokens = torch.randn(2, 17 * 13, DIM)  # a grid no other test uses
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter('ignore')
        mask.eval()(tokens, (17, 13))
    mask.train()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        plan = mask(tokens.requires_grad_(), (17, 13))
    plan.unmerge(plan.merge(tokens)).sum().backward()
    assert mask.theta.grad is not None and tokens.grad is not None


def _gpu_merge(rows, index, weights):
    """The merge a compiled GPU forward traces, forced on the CPU."""
    if torch.compiler.is_compiling():
        return merge_ops.fused_gather_row_sum(rows, index, weights)
    return merge_ops.bagged_row_sum(rows, index, weights)


@pytest.mark.parametrize('backend, gpu_merge', [
    ('aot_eager', False),
    pytest.param('inductor', False, marks=NEEDS_CXX),
    pytest.param('inductor', True, marks=NEEDS_CXX, id='inductor-gpu-merge')])
def test_compiled_ltm_block_equals_eager(backend, gpu_merge, monkeypatch):
    """``gpu_merge``: with the merge that compiled GPU code traces (a fused
    gather of rows and weights computed once), which the CPU never picks."""
    if gpu_merge:
        monkeypatch.setattr(merge_ops, '_weighted_row_sum', _gpu_merge)
    torch.manual_seed(0)
    block = LTMMobileVitBlock(in_channels=16, transformer_dim=24, ffn_dim=48,
                              out_channels=16, num_transformer_blocks=2,
                              merge_ratios=[0.5, 1.0], num_classes=10)
    fill_synthetic_statistics(block)
    block.eval()
    x = torch.randn(2, 16, 24, 20)
    torch._dynamo.reset()
    with torch.no_grad():
        eager = block(x)
        compiled = torch.compile(block, backend=backend, fullgraph=True)(x)
    torch.testing.assert_close(compiled, eager, atol=1e-4, rtol=1e-4)


def test_traced_merge_on_the_cpu_calls_embedding_bag():
    """Compiled for the CPU, merge and unmerge keep ``embedding_bag``: a
    gather-multiply-sum lets inductor inline the weights' computation into
    the loop over channels (a compiled block ran 2-3x slower than eager)."""
    mask = small_ltm_layer()
    tokens = torch.randn(2, 400, DIM)
    graphs = []

    def capture(graph_module, example_inputs):
        graphs.append(graph_module)
        return graph_module.forward

    torch._dynamo.reset()
    with torch.no_grad():
        eager = merge_and_unmerge(mask, tokens)
        traced = torch.compile(merge_and_unmerge, backend=capture,
                               fullgraph=True)(mask, tokens)
    torch.testing.assert_close(traced, eager)
    targets = [node.target for graph in graphs for node in graph.graph.nodes
               if node.op == 'call_function']
    assert targets.count(torch.nn.functional.embedding_bag) == 2, targets
