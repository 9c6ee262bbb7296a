"""The package's floors (docs/code.md): a module imports from its own floor and those below it."""

import ast
from pathlib import Path

import pytest

import mnistgan

PACKAGE = Path(mnistgan.__file__).parent
FLOORS = [  # lowest first
    {"version", "errors", "conditioning", "files", "caches", "config", "runs", "epochlog", "seeds", "images", "lock", "plots",
     "schedule", "stopping"},
    {"backend", "data", "imagefolder", "models", "gan", "losses", "average", "checkpoints", "distribute", "classifier",
     "clusters", "metrics"},
    {"planning", "training", "callbacks", "monitoring", "sampling", "sheets", "interpolation", "projection", "export",
     "evaluation", "animation", "console"},
    {"api", "__init__"},
    {"cli", "explorer", "__main__"},
]
FLOOR = {name: i for i, names in enumerate(FLOORS) for name in names}


def imported_modules(path: Path) -> set[str]:
    """The mnistgan modules a file imports, wherever the import is (functions included);
    ``from mnistgan import name`` is the module ``name``, or the package when it is not one."""
    return {name for node in ast.walk(ast.parse(path.read_text())) for name in imported_modules_of(node)}


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


# The modules that define Keras layers and models when imported; every other module imports no
# TensorFlow until a function that needs it runs, so a module of any floor may import them at the top.
LOADS_TENSORFLOW = {"models", "gan", "losses", "average", "classifier"}


IMPORT_AND_SAY = ("import importlib, sys\n"
                  "for name in sys.argv[1:]:\n"
                  "    importlib.import_module('mnistgan.' + name)\n"
                  "    print(name, 'tensorflow' in sys.modules, flush=True)\n")


def _imported(*names: str) -> list[str]:
    """'name True|False' for each module imported in turn, in a fresh process."""
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", IMPORT_AND_SAY, *names], capture_output=True, text=True,
                          check=True).stdout.splitlines()


def test_no_other_module_loads_tensorflow_when_imported():
    free = sorted(set(FLOOR) - LOADS_TENSORFLOW - {"__init__", "__main__"})
    assert [line for line in _imported(*free) if line.endswith("True")] == []


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(LOADS_TENSORFLOW))
def test_the_model_modules_do_load_it(name):  # so the list above is exact
    assert _imported(name) == [f"{name} True"]


def test_only_the_model_modules_are_imported_inside_functions():
    """Every other import of mnistgan's own modules is at the top of its file, where a reader
    looks for what a module depends on; these load TensorFlow, so the modules that must not
    (test above) import them where they are needed."""
    inside = set()
    for path in sorted(PACKAGE.glob("*.py")):
        for function in ast.walk(ast.parse(path.read_text())):
            if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inside |= {f"{path.stem}: {name}" for node in ast.walk(function)
                           for name in imported_modules_of(node) if name not in LOADS_TENSORFLOW}
    assert not inside


def imported_modules_of(node: ast.AST) -> set[str]:
    """The mnistgan modules one import statement names ('__init__' for the package)."""
    if isinstance(node, ast.ImportFrom) and node.module == "mnistgan":
        return {a.name if (PACKAGE / f"{a.name}.py").exists() else "__init__" for a in node.names}
    if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mnistgan."):
        return {node.module.split(".")[1]}
    if isinstance(node, ast.Import):
        return {a.name.split(".")[1] if "." in a.name else "__init__" for a in node.names
                if a.name.split(".")[0] == "mnistgan"}
    return set()


def test_only_the_front_ends_import_the_console():
    """The console (rich, the terminal and the notebook's progress) is for the front ends: the
    command line, and the Python API's own progress display (``train(progress=True)``). The
    library under them reports through a Reporter it is given. (This held before issue 43 asked
    for it: the API's train, a front end for notebooks, keeps its progress bar.)"""
    importers = {path.stem for path in PACKAGE.glob("*.py") if "console" in imported_modules(path)}
    assert importers <= {"cli", "api", "__init__"}, importers
