"""``reuse_freed_memory``: large tensors reuse pages instead of faulting in
fresh ones (counted as minor page faults, not timed)."""
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import ltm_mm.engine.cpu_memory
from ltm_mm.engine.cpu_memory import reuse_freed_memory, uses_glibc

GLIBC = uses_glibc()

# runs a chain of elementwise ops on a 52 MiB map (a batch-8 feature map
# of SSDLite at 320x320: above glibc's largest mmap threshold, 32 MiB) and
# prints the share of the outputs' pages that faulted in; the module is
# loaded from its file (argv[2]), without the package's imports
PAGE_FAULT_SHARE = textwrap.dedent('''
    import importlib.util, resource, sys, torch
    spec = importlib.util.spec_from_file_location('cpu_memory', sys.argv[2])
    cpu_memory = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cpu_memory)
    if sys.argv[1] == 'reuse':
        assert cpu_memory.reuse_freed_memory()
    torch.set_num_threads(1)
    x = torch.ones(8, 64, 160, 160)
    def chain():  # 8 outputs of 52 MiB, each freed after the next step
        y = x
        for _ in range(4):
            y = torch.sigmoid(y) * y
    def faults():
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    chain()  # the heap grows once either way
    before = faults()
    for _ in range(5):
        chain()
    pages = 5 * 8 * x.numel() * 4 // 4096
    print((faults() - before) / pages)
''')


def _fault_share(mode: str) -> float:
    result = subprocess.run(
        [sys.executable, '-c', PAGE_FAULT_SHARE, mode,
         str(Path(ltm_mm.engine.cpu_memory.__file__))],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return float(result.stdout.split()[-1])


@pytest.mark.skipif(not GLIBC, reason='glibc malloc only')
def test_freed_tensors_are_reused_instead_of_faulted_in_again():
    # glibc maps every large output afresh: nearly all its pages fault in
    assert _fault_share('system') > 0.5
    # kept on the heap, freed pages are reused (measured: 2-12% fault in
    # against 96%, as the heap's free chunks get split and merged)
    assert _fault_share('reuse') < 0.3


@pytest.mark.skipif(GLIBC, reason='on glibc the setting applies')
def test_other_c_libraries_are_left_alone():
    assert reuse_freed_memory() is False
