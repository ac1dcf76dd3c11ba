"""Which library files a job runs, derived from the imports (so editing one reruns exactly its jobs).

A rule names the module (or notebook) it executes; its code inputs are that module's transitive
closure of ``grokking`` imports, read from the source with :mod:`ast` (imports inside functions
included, and module names written as strings in a registry such as ``models.FAMILIES``;
nothing is executed), plus the package ``__init__`` files Python runs on the way. Derived
rather than listed by hand, so a new import can never leave a job out of date; per job rather than
the whole package, so editing a plotting helper does not retrain the paper's grids.
"""

from __future__ import annotations

import ast
import json
from functools import cache
from pathlib import Path

PACKAGE = "grokking"
SRC = Path(__file__).resolve().parents[1]  # where the package is: src/ of a checkout, or site-packages


@cache
def _module_file(module: str) -> Path | None:
    base = SRC.joinpath(*module.split("."))
    if base.with_suffix(".py").exists():
        return base.with_suffix(".py")
    if (base / "__init__.py").exists():
        return base / "__init__.py"
    return None


def _parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


@cache
def _tree(module: str) -> ast.Module:
    """The parsed source of ``module`` (each file is parsed once per process)."""
    return ast.parse(_module_file(module).read_text())


def _imports_in(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Absolute names of the ``grokking`` modules that the code ``tree`` (of ``module``) imports."""
    found = set()
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            found |= {f"{prefix}.{a.name}" for a in node.names}  # "from pkg import module"
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.startswith(PACKAGE + "."):
            found.add(node.value)  # a module named in a registry, imported with importlib
    return {m for m in found if m.split(".")[0] == PACKAGE and _module_file(m) is not None}


@cache
def _module_imports(module: str) -> tuple[str, ...]:
    """The ``grokking`` modules that ``module``'s own source imports."""
    return tuple(sorted(_imports_in(_tree(module), module, _module_file(module).name == "__init__.py")))


@cache
def closure(module: str) -> tuple[str, ...]:
    """Every ``grokking`` module that importing and running ``module`` may execute, sorted."""
    seen, todo = set(), [module]
    while todo:
        mod = todo.pop()
        if mod in seen:
            continue
        seen.add(mod)
        todo += _parents(mod) + list(_module_imports(mod))
    return tuple(sorted(seen))


def notebook_modules(path) -> set[str]:
    """The ``grokking`` modules a notebook's code cells import."""
    cells = json.loads(Path(path).read_text())["cells"]
    source = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    return _imports_in(ast.parse("\n".join(lines)), PACKAGE, True)


ENTRY_POINTS = ("grokking.__main__", "grokking.cli")  # what ``python -m grokking <command>`` runs first


@cache
def command_modules(command: str) -> frozenset[str]:
    """The ``grokking`` modules that ``python -m grokking <command>`` imports: those of the function
    ``cmd_<command>`` in ``cli.py`` (each command imports what it needs inside its function)."""
    name = "cmd_" + command.replace("-", "_")
    for node in _tree("grokking.cli").body:
        if isinstance(node, ast.FunctionDef) and node.name == name:
            return frozenset(_imports_in(node, "grokking.cli", False))
    raise ValueError(f"grokking.cli has no command function {name}")


@cache
def data_files(module: str) -> tuple[Path, ...]:
    """The package data that ``module`` declares it reads as its own input: the file names of a top-level
    ``PACKAGE_DATA = ("claims.yaml", ...)``, relative to the package (a module that reads a file only to
    check a name, as ``config`` reads the claim ids, does not declare it)."""
    for node in _tree(module).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "PACKAGE_DATA" for t in node.targets):
            return tuple(SRC / PACKAGE / name for name in ast.literal_eval(node.value))
    return ()


def code_files(*modules: str, command=None, notebook=None, root=None) -> list[str]:
    """The source files of the closure of ``modules``, of a ``cli`` command, and of a notebook's
    imports, plus the package data they declare (``PACKAGE_DATA``), relative to ``root``. With a command,
    the entry points themselves are included as files (``cli`` imports each command's modules lazily,
    inside the command, so only those run)."""
    names = set(ENTRY_POINTS) if command else set()
    extra = sorted(command_modules(command)) if command else []
    for m in list(modules) + extra + sorted(notebook_modules(notebook) if notebook else ()):
        names |= set(closure(m))
    files = sorted({_module_file(m) for m in names} | {f for m in names for f in data_files(m)})
    return [str(f.relative_to(Path(root).resolve())) if root else str(f) for f in files]
