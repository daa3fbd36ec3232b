"""`nst export`: the whole transfer as two standard ONNX graphs and a manifest, for hosts without nst
(docs/bundle.md).

    from nst.bundle import export_folder
    print(export_folder("bundle/", preset="nst"))
"""

from .export import export_folder

__all__ = ["export_folder"]
