"""The `nst` command line: a thin typer layer over `engine`."""
