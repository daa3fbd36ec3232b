"""The package's layers (docs/design.md, Layout): the folders are the import names, and each part imports only
the layers below its own: the command line, then the hosts (server, Ray), then the applications, then the engine,
then the numba kernels and the model."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "nst"
# The parts of the package, top layer first (docs/design.md, Layout). A part imports itself and the layers below its
# own, never a part of its own layer or of a layer above.
LAYERS = (
    ("nst.cli",),
    ("nst.serve", "nst.distributed"),
    ("nst.video", "nst.batch", "nst.bundle", "nst.bench", "nst.seedreport"),
    ("nst.engine",),
    ("nst.kernels", "nst.models"),
)
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


def _part(name: str) -> tuple[int, str] | None:
    """(layer, part) of a module name, or None for nst itself and `python -m nst`."""
    for layer, parts in enumerate(LAYERS):
        for part in parts:
            if _within(name, part):
                return layer, part
    return None


def test_every_module_is_in_a_layer():
    assert not [m for m in MODULES if _part(m) is None and m not in ("nst", "nst.__main__")]


@pytest.mark.parametrize("part", [part for parts in LAYERS for part in parts])
def test_each_part_imports_only_itself_and_the_layers_below(part):
    layer = next(i for i, parts in enumerate(LAYERS) if part in parts)
    bad = {}
    for module, imports in MODULES.items():
        if not _within(module, part) or module in ALIASES:
            continue
        above = sorted(i for i in imports if (p := _part(i)) and p[1] != part and p[0] <= layer)
        bad |= {module: above} if above else {}
    assert not bad


def _defines(module: str) -> set[str] | None:
    """The names a module of the package defines at its top level (None: no such module; {"*"}: any name,
    through a module __getattr__)."""
    base = ROOT.joinpath(*module.split("."))
    path = base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
    if not path.is_file():
        return None
    names, body = set(), list(ast.parse(path.read_text()).body)
    while body:
        node = body.pop()
        if isinstance(node, (ast.If, ast.Try)):
            body += [*node.body, *node.orelse, *getattr(node, "handlers", []), *getattr(node, "finalbody", [])]
        elif isinstance(node, ast.ExceptHandler):
            body += node.body
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for target in targets for n in ast.walk(target) if isinstance(n, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    return names | {"*"} if "__getattr__" in names else names


def test_every_import_of_the_package_names_a_module_or_a_name_it_defines():
    """What pyright reports only as a warning in the files that import an optional extra is an error here."""
    unresolved = set()
    for imports in MODULES.values():
        for name in imports:
            parts = name.split(".")
            split = next(i for i in range(len(parts), 0, -1) if _defines(".".join(parts[:i])) is not None)
            rest, defined = parts[split:], _defines(".".join(parts[:split])) or set()
            if rest and rest[0] not in defined and "*" not in defined:
                unresolved.add(name)
    assert not unresolved


def test_the_engines_lazy_names_are_its_public_names():
    import nst.engine

    assert sorted(nst.engine._EXPORTS) == sorted(nst.engine.__all__)


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
