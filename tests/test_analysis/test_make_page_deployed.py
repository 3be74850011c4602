"""The benchmark page (ltm_mm/analysis/benchmark_page.py): the SSDLite
pairs timed again with freed memory reused and channels-last."""
import pytest
import torch

from ltm_mm.analysis import benchmark_page as make_page


def test_deployed_latency_section_times_ssdlite_pairs_channels_last(
        tiny_configs, monkeypatch):
    ltm, plain = tiny_configs(64)
    calls = []
    # the allocator setting would hold for the rest of the test process
    monkeypatch.setattr(make_page, 'reuse_freed_memory', lambda: False)
    compare_latency = make_page.compare_latency

    def recording(models, *args, **kwargs):
        results = compare_latency(models, *args, **kwargs)
        calls.append(([next(m.parameters()).is_contiguous(
            memory_format=torch.channels_last) for m in models], kwargs,
            results))
        return results

    monkeypatch.setattr(make_page, 'compare_latency', recording)
    figures = make_page.PageFigures()
    pairs = [('SSDLite tiny', str(ltm), str(plain), (64, 64)),
             ('Mask R-CNN tiny', str(ltm), str(plain), (64, 64))]
    section = make_page.deployed_latency_section(pairs, 2, figures)
    # only the SSDLite pair, at batches 1 and 8, both models channels-last
    assert len(calls) == 1
    layouts, kwargs, results = calls[0]
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
        # the ratio of the medians (the ms cells are rounded to 0.1)
        first, second = results[int(row[2])]
        assert ratio == pytest.approx(first.median_ms / second.median_ms,
                                      abs=1e-3)
        assert (ltm_ms, plain_ms) == (round(first.median_ms, 1),
                                      round(second.median_ms, 1))
        key = ('deployed', 'SSDLite tiny', int(row[2]))
        assert figures.metrics[key] == pytest.approx(ratio, abs=1e-3)
        # the paired column: median and IQR of the per-round ratios
        paired = make_page.paired_ratio(*results[int(row[2])])
        median, iqr = row[6].strip(' |').rstrip(')').split(' (')
        assert float(median) == pytest.approx(paired.median, abs=1e-3)
        assert float(iqr) == pytest.approx(paired.iqr, abs=1e-3)
        assert figures.paired[key] == paired.median
    # the targets table shows the paired ratio beside the judged one
    target_row = make_page.targets_section(figures, targets=[
        ('tiny, batch 8', ('deployed', 'SSDLite tiny', 8), 0.9, 'test')
    ]).splitlines()[-1]
    paired = figures.paired[('deployed', 'SSDLite tiny', 8)]
    assert f'(paired {paired:.3f})' in target_row
