from .cpu_amp import CPUAmpOptimWrapper
from .cpu_memory import reuse_freed_memory

__all__ = ['CPUAmpOptimWrapper', 'reuse_freed_memory']
