from .cpu_amp import CPUAmpOptimWrapper

__all__ = ['CPUAmpOptimWrapper']
