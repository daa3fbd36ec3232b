"""`nst bench`: the objective's speed per execution provider, path and size, and its chart.

from nst.bench import benchmark, plan
report = benchmark(plan("cpu", "256,512", "split,fused", iterations=5, warmup=2, threads=None))
"""

from .timing import benchmark, plan

__all__ = ["benchmark", "plan"]
