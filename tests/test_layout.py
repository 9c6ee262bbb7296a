"""The package's floors (docs/code.md): a module imports from its own floor and those below it."""

import ast
from pathlib import Path

import mnistgan

PACKAGE = Path(mnistgan.__file__).parent
FLOORS = [  # lowest first
    {"errors", "files", "config", "runs", "epochlog", "seeds", "images", "lock", "plots"},
    {"backend", "data", "models", "gan", "checkpoints", "distribute", "classifier", "clusters", "metrics"},
    {"training", "monitoring", "sampling", "interpolation", "projection", "export", "evaluation",
     "animation", "console"},
    {"api", "__init__"},
    {"cli", "explorer", "__main__"},
]
FLOOR = {name: i for i, names in enumerate(FLOORS) for name in names}


def imported_modules(path: Path) -> set[str]:
    """The mnistgan modules a file imports, wherever the import is (functions included);
    ``from mnistgan import name`` is the module ``name``, or the package when it is not one."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "mnistgan":
            found |= {a.name if (PACKAGE / f"{a.name}.py").exists() else "__init__" for a in node.names
                      if a.name != "__version__"}  # the version: package metadata, not a floor
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mnistgan."):
            found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] if "." in a.name else "__init__" for a in node.names
                      if a.name.split(".")[0] == "mnistgan"}
    return found


def test_every_module_has_a_floor():
    assert {p.stem for p in PACKAGE.glob("*.py")} == set(FLOOR)


def test_no_module_imports_from_a_floor_above_it():
    upward = [f"{path.stem} imports {name}" for path in sorted(PACKAGE.glob("*.py"))
              for name in sorted(imported_modules(path)) if FLOOR[name] > FLOOR[path.stem]]
    assert not upward



def private_imports(source: str) -> set[str]:
    """Modules of other libraries that ``source`` reaches into: a dotted name with a part that
    starts with an underscore (``typer._click``), which the library may change in any release."""
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and node.level == 0:
            names |= {node.module, *(f"{node.module}.{a.name}" for a in node.names)}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return {n for n in names if n.split(".")[0] not in ("mnistgan", "__future__")
            and any(part.startswith("_") for part in n.split("."))}


def test_no_module_imports_another_librarys_private_module():
    # What is looked for: the vendored click that cli.py imported before 0.6.
    assert private_imports("from typer._click.globals import get_current_context\nimport typer.core") == {
        "typer._click.globals", "typer._click.globals.get_current_context"}
    found = {f"{path.stem}: {name}" for path in sorted(PACKAGE.glob("*.py")) for name in private_imports(path.read_text())}
    assert not found
