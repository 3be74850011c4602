"""Analysis: IB estimates, FLOPs and latency."""
