"""The package's layers (docs/design.md, Layout): the folders are the import names, and each layer imports only
the layers below it: the command line, then the applications, then the engine, then the numba kernels."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "nst"
APPLICATIONS = ("nst.serve", "nst.video", "nst.distributed", "nst.batch", "nst.bundle", "nst.bench", "nst.seedreport")
# The applications' homes before 0.3, kept so that code written against them still runs.
ALIASES = {"nst.engine.batch": "nst.batch", "nst.engine.bench": "nst.bench"}


def _name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module (or module attribute) `path` imports, relative imports resolved: `from a import b` gives a.b."""
    package = _name(path) if path.name == "__init__.py" else _name(path).rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            names |= {f"{module}.{alias.name}" for alias in node.names}
    return {n for n in names if n == "nst" or n.startswith("nst.")}


MODULES = {_name(p): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def _within(name: str, *prefixes: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def test_every_folder_of_the_package_is_a_package():
    folders = {p.parent for p in PACKAGE.rglob("*.py")}
    assert not [str(f) for f in folders if not (f / "__init__.py").is_file()]


def test_the_kernels_import_nothing_of_nst_but_themselves():
    bad = {m: sorted(i for i in imports if not _within(i, "nst.kernels")) for m, imports in MODULES.items()}
    assert not {m: i for m, i in bad.items() if i and _within(m, "nst.kernels")}


def test_the_engine_imports_no_application_and_not_the_command_line():
    bad = {}
    for module, imports in MODULES.items():
        if _within(module, "nst.engine") and module not in ALIASES:
            above = sorted(i for i in imports if _within(i, "nst.cli", *APPLICATIONS))
            bad |= {module: above} if above else {}
    assert not bad


def test_nothing_imports_the_command_line_but_itself_and_python_m_nst():
    bad = {m: sorted(i for i in imports if _within(i, "nst.cli")) for m, imports in MODULES.items()}
    assert not {m: i for m, i in bad.items() if i and not _within(m, "nst.cli", "nst.__main__")}


@pytest.mark.parametrize("alias,home", sorted(ALIASES.items()))
def test_the_old_homes_only_re_export_the_new_ones(alias, home):
    assert MODULES[alias] and all(_within(i, home) for i in MODULES[alias]), MODULES[alias]
    old, new = importlib.import_module(alias), importlib.import_module(home)
    assert all(getattr(old, name) is getattr(new, name) for name in old.__all__)


def test_the_public_names_resolve():
    import nst
    import nst.serve
    from nst.batch import batch_transfer
    from nst.bench import benchmark, plan
    from nst.engine.batch import batch_transfer as old_batch_transfer
    from nst.engine.bench import benchmark as old_benchmark

    assert old_batch_transfer is batch_transfer and old_benchmark is benchmark and callable(plan)
    assert callable(nst.serve.create_app)
    assert all(getattr(nst, name) is not None for name in nst.__all__)
    assert nst.SeedReport.__module__ == "nst.seedreport" and nst.StyleTransfer.__module__ == "nst.engine.transfer"
