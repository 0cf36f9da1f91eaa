"""The import graph of ``poselabel``: no cycles (imports inside functions included), and the
layers of ``poselabel/models`` (docs/architecture.md): no Beam or pipeline code below the
transforms, no stage importing another stage, no shared part importing a stage.

Read with ``ast``, not by importing, so an import hidden in a function counts like any other.
An edge goes to the module an import names (``from a.b import c`` goes to ``a.b.c`` when that
is a module, else to ``a.b``); a package's ``__init__`` is not implied by its submodules.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("decode", "detect", "segment", "tz", "pose", "camera", "quality")
SHARED = ("blazepose", "body", "render", "nets", "geometry", "masks", "ground_truth", "images", "kept")
ABOVE_MODELS = ("poselabel.transforms", "poselabel.pipelines", "poselabel.commands", "poselabel.report",
                "poselabel.cli", "poselabel.tables", "poselabel.export")


def module_names(root: Path, package: str) -> dict[str, Path]:
    """``{dotted module name: file}`` of every module of ``package`` under ``root``."""
    out = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """``{module: modules of the package it imports}``, every import statement counted."""
    modules = module_names(root, package)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: resolve against this module's package
                    anchor = name.split(".") if is_pkg else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
            for t in targets:
                while t and t not in modules:  # `import a.b.c` of a name inside a module
                    t = t.rpartition(".")[0]
                if t and t != name:
                    graph[name].add(t)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def all_imports(path: Path) -> set[str]:
    """Every module name an import statement of ``path`` names (third-party ones included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def models_part(module: str) -> str | None:
    """The stage package or shared part of ``poselabel.models`` a module belongs to."""
    parts = module.split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["poselabel", "models"] else None


def test_no_import_cycles():
    found = cycles(import_graph(ROOT, "poselabel"))
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_checker_sees_a_cycle_hidden_in_a_function(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from pkg.sub.c import g\n    return g\n")
    (pkg / "sub" / "c.py").write_text("def g():\n    from .. import a\n    return a\n")
    (pkg / "d.py").write_text("import pkg.a\n")  # imports into the cycle, is not part of it
    assert cycles(import_graph(tmp_path, "pkg")) == [["pkg.a", "pkg.sub.b", "pkg.sub.c"]]
    (pkg / "sub" / "c.py").write_text("def g():\n    return 1\n")
    assert cycles(import_graph(tmp_path, "pkg")) == []


def test_every_module_of_models_is_in_a_known_part():
    parts = {models_part(m) for m in module_names(ROOT, "poselabel") if models_part(m)}
    assert parts == set(STAGES) | set(SHARED)


@pytest.mark.parametrize("module", sorted(m for m in module_names(ROOT, "poselabel") if models_part(m)))
def test_models_layers(module):
    path = module_names(ROOT, "poselabel")[module]
    imports = all_imports(path)
    assert not [i for i in imports if i.split(".")[0] == "apache_beam"], f"{module} imports Beam"
    above = [i for i in imports if i.startswith(ABOVE_MODELS)]
    assert not above, f"{module} imports {above}: models/ sits below the transforms and pipelines"
    # a stage may use the shared parts, never another stage; a shared part never uses a stage
    stages = ({models_part(i) for i in imports} - {models_part(module)}) & set(STAGES)
    assert not stages, f"{module} imports the stage(s) {sorted(stages)}"


@pytest.mark.parametrize("module", sorted(m for m in module_names(ROOT, "poselabel")
                                          if m.startswith("poselabel.transforms.")))
def test_no_transform_imports_another_stage(module):
    stages = {m for m in module_names(ROOT, "poselabel") if m.startswith("poselabel.transforms.")}
    stages -= {"poselabel.transforms.base", "poselabel.transforms.shared_models"}
    imports = all_imports(module_names(ROOT, "poselabel")[module]) & stages
    assert not imports - {module}, f"{module} imports {sorted(imports)}"
