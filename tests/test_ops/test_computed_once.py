"""``computed_once``: inductor computes a merge's rows and weights into
buffers instead of redoing them inside the fused gather (ltm_mm/ops/merge.py).

Inductor makes the same realise-or-inline decision for every device before
it generates code, so the CPU's generated C++ shows it: with the hint, a
loop over every element of the rows stores them once.  (A whole LTM block
compiled with this merge: tests/test_models/test_merge_hot_path.py.)
"""

import torch

import ltm_mm.ops.merge as merge_ops
from cpu_compiler import NEEDS_CXX

pytestmark = NEEDS_CXX

BATCH, TOKENS, MERGED, SLOTS, DIM = 2, 40, 21, 9, 24


def _merge(first, second, logits, index):
    """A merge as the LTM block traces it for a GPU: rows from a residual
    add, weights from a window softmax."""
    rows = (first + second).reshape(BATCH * TOKENS, DIM)
    weights = torch.softmax(logits, -1).reshape(-1, SLOTS)
    offsets = torch.arange(BATCH) * TOKENS
    # (1, P, K) + (B, 1, 1) -> (B*P, K) rows of the (B*N, D) matrix
    flat_index = (index[None] + offsets[:, None, None]).reshape(-1, SLOTS)
    return merge_ops.fused_gather_row_sum(rows, flat_index, weights)


def _compiled_code(inputs) -> tuple:
    from torch._inductor.utils import run_and_get_code
    torch._dynamo.reset()
    out, code = run_and_get_code(torch.compile(_merge), *inputs)
    return out, '\n'.join(code)


def test_rows_are_computed_once_not_inlined(monkeypatch):
    gen = torch.Generator().manual_seed(0)
    inputs = (torch.randn(BATCH, TOKENS, DIM, generator=gen),
              torch.randn(BATCH, TOKENS, DIM, generator=gen),
              torch.randn(BATCH, MERGED, SLOTS, generator=gen),
              torch.randint(0, TOKENS, (MERGED, SLOTS), generator=gen))
    eager = _merge(*inputs)
    out, code = _compiled_code(inputs)
    torch.testing.assert_close(out, eager)
    rows_loop = f'x0<static_cast<int64_t>({BATCH * TOKENS * DIM}L)'
    assert rows_loop in code
    # without the hint inductor inlines the add into the gather's loads
    monkeypatch.setattr(merge_ops, 'computed_once', lambda tensor: tensor)
    out, inlined = _compiled_code(inputs)
    torch.testing.assert_close(out, eager)
    assert rows_loop not in inlined
    torch._dynamo.reset()


def test_computed_once_is_the_tensor_itself():
    base = torch.randn(6, 10)
    view = base[1:, ::2]
    marked = merge_ops.computed_once(view)
    assert torch.equal(marked, view)
    assert marked.data_ptr() == view.data_ptr()
    assert marked.stride() == view.stride()
