"""`nst export`: the whole transfer as two standard ONNX graphs and a manifest, for hosts without nst
(docs/bundle.md)."""
