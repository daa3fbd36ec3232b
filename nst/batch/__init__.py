"""`nst batch`: every image of a folder with the same styles, resumable, shared by processes through claims.

from nst.batch import batch_transfer
"""

from .runner import batch_transfer

__all__ = ["batch_transfer"]
