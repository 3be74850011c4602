"""Reuse freed CPU memory instead of mapping fresh pages (glibc malloc).

glibc's malloc serves every request above its mmap threshold (adaptive, at
most 32 MiB on 64-bit systems) with a fresh ``mmap`` and unmaps it on
``free``; the kernel then zero-fills every 4 KiB page at its first touch.
A detector's feature maps at batch 8 are tens of MiB each (SSDLite at
320x320: 8 x 64 x 160 x 160 floats is 52 MiB), so every layer of every
forward maps, faults in and unmaps its outputs, and on a CPU machine those
page faults, not the arithmetic, can be most of an eager forward
(docs/speed.md, "Page faults and memory layout on the CPU").

:func:`reuse_freed_memory` tells glibc to serve large requests from its
heap and to keep freed memory there, so later requests reuse pages that are
already mapped.  The process then holds on to its peak memory until it
exits.  This is what PyTorch's CPU performance guide gets from jemalloc or
TCMalloc; for any command the same setting is

    MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647 python ...
"""
import ctypes
import ctypes.util
import platform

# mallopt parameters (glibc's malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
# mallopt takes an int: keep up to 2 GiB of free memory at the heap's top
_KEEP_BYTES = 2**31 - 1


def uses_glibc() -> bool:
    """Whether this process's C library is glibc (what
    :func:`reuse_freed_memory` configures)."""
    return platform.system() == 'Linux' and platform.libc_ver()[0] == 'glibc'


def _glibc():
    """The C library through ctypes, or None where it is not glibc."""
    if not uses_glibc():
        return None
    name = ctypes.util.find_library('c')
    return ctypes.CDLL(name) if name else None


def reuse_freed_memory() -> bool:
    """Serve large allocations from the heap and keep freed memory mapped.

    Returns:
        bool: True where glibc took the setting; False where the C library
        is not glibc (macOS, musl, Windows): nothing is changed there.

    Raises:
        RuntimeError: glibc refused a setting.
    """
    libc = _glibc()
    if libc is None:
        return False
    for name, param, value in (('M_MMAP_MAX', _M_MMAP_MAX, 0),
                               ('M_TRIM_THRESHOLD', _M_TRIM_THRESHOLD,
                                _KEEP_BYTES)):
        if libc.mallopt(ctypes.c_int(param), ctypes.c_int(value)) != 1:
            raise RuntimeError(f'glibc mallopt refused {name}={value}')
    return True
