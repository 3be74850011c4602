"""benchmarks/make_page.py: the SSDLite pairs timed again with freed memory
reused and channels-last."""
import pytest
import torch

from project_scripts import load_script


def test_deployed_latency_section_times_ssdlite_pairs_channels_last(
        tiny_configs, monkeypatch):
    make_page = load_script('benchmarks/make_page.py')
    ltm, plain = tiny_configs(64)
    calls = []
    # the allocator setting would hold for the rest of the test process
    monkeypatch.setattr(make_page, 'reuse_freed_memory', lambda: False)
    compare_latency = make_page.compare_latency

    def recording(models, *args, **kwargs):
        calls.append(([next(m.parameters()).is_contiguous(
            memory_format=torch.channels_last) for m in models], kwargs))
        return compare_latency(models, *args, **kwargs)

    monkeypatch.setattr(make_page, 'compare_latency', recording)
    monkeypatch.setattr(make_page, 'METRICS', {})
    pairs = [('SSDLite tiny', str(ltm), str(plain), (64, 64)),
             ('Mask R-CNN tiny', str(ltm), str(plain), (64, 64))]
    section = make_page.deployed_latency_section(pairs, iters=2)
    # only the SSDLite pair, at batches 1 and 8, both models channels-last
    assert len(calls) == 1
    layouts, kwargs = calls[0]
    assert layouts == [True, True]
    assert kwargs['memory_format'] == torch.channels_last
    assert kwargs['batch_sizes'] == (1, 8)
    assert 'not here: the C library is not glibc' in section
    rows = [line.split(' | ') for line in section.splitlines()
            if line.startswith('| SSDLite tiny')]
    assert [int(row[2]) for row in rows] == [1, 8]
    for row in rows:
        ltm_ms, plain_ms = float(row[3]), float(row[4])
        ratio = float(row[5].strip('*| '))
        assert ratio == pytest.approx(ltm_ms / plain_ms, rel=0.01)
        key = ('deployed', 'SSDLite tiny', int(row[2]))
        assert make_page.METRICS[key] == pytest.approx(ratio, abs=1e-3)
