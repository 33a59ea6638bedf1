"""The package's imports flow one way (docs/architecture.md): each part imports only the parts before it
in LAYERS, or modules of its own package. Nothing imports the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "seqkit"
# the layers of docs/architecture.md, first to last; names in one tuple share a layer
LAYERS = (
    ("errors", "wording"),
    ("config", "runtime", "outputs"),
    ("configfile",),
    ("data",),
    ("models",),
    ("decoding",),
    ("scoring",),
    ("modeldir",),
    ("training",),
    ("model_types",),
    ("viz",),
    ("export",),
    ("arguments",),
    ("api",),
    ("loading",),
    ("console",),
    ("results",),
    ("runs",),
    ("server",),
    ("cli",),
    ("__main__",),
)
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def _part(module: str) -> str:
    """seqkit.training.loop -> training"""
    return module.split(".")[1]


def _imports(path: Path) -> set[str]:
    """Every seqkit module a file imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("seqkit"):
            if node.module == "seqkit":
                found.update(f"seqkit.{alias.name}" for alias in node.names)
            else:
                found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("seqkit."))
    return {name for name in found if name.count(".") >= 1 and not name.startswith("seqkit.__version__")}


def test_every_part_of_the_package_has_a_layer():
    modules = [
        p for p in PACKAGE.iterdir() if p.suffix == ".py" or (p.is_dir() and not p.name.startswith("__py"))
    ]
    parts = {p.stem if p.is_file() else p.name for p in modules}  # (py.typed is a marker, no part)
    parts = {part for part in parts if part != "__init__" and not part.startswith(".")}
    assert parts == set(RANK), "add the new module or package to LAYERS and docs/architecture.md"


def test_imports_flow_one_way():
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative == Path("__init__.py"):
            continue  # the package's own __init__ sets process-wide settings (runtime.allocator)
        part = relative.parts[0].removesuffix(".py")
        for imported in _imports(path):
            other = _part(imported)
            if other != part and RANK[other] >= RANK[part]:
                wrong.append(f"{relative} imports {imported}")
    assert not wrong, wrong


def test_the_checker_sees_a_wrong_import(tmp_path):
    path = tmp_path / "bad.py"
    path.write_text("def f():\n    from seqkit.cli import app\n    from seqkit import console\n")
    assert _imports(path) == {"seqkit.cli", "seqkit.console"}
