"""The former home of `nst batch`'s API, kept so that code written against it still runs: use `nst.batch`."""

from nst.batch.runner import batch_transfer

__all__ = ["batch_transfer"]
