"""The former home of `nst bench`'s API, kept so that code written against it still runs: use `nst.bench`."""

from nst.bench.timing import benchmark, plan

__all__ = ["benchmark", "plan"]
