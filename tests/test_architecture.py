"""Imports point one way: read from the source with ``ast``, without importing anything."""

import ast
from pathlib import Path

import pytest

import waymo_unet

PACKAGE = Path(waymo_unet.__file__).parent
LIBRARIES = (
    "data",
    "datasets",
    "evaluation",
    "inference",
    "models",
    "reporting",
    "tracking",
    "training",
    "tuning",
)
RULES = [  # (importing package, packages it must not import)
    *((library, ("pipelines",)) for library in LIBRARIES),
    ("models", ("reporting", "training")),
    ("inference", ("training",)),
    ("tracking", ("datasets", "training", "tuning")),  # records what they made, not how
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import in a file of the package."""
    package = module_name(path)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    return imports(path.read_text(), package)


def imports(source: str, package: str) -> list[tuple[int, str]]:
    """(line, module) for every import in ``source``, at any depth, relative ones resolved.

    ``from a import b`` counts as importing ``a`` and ``a.b``: ``b`` may be a submodule.
    """
    parts = package.split(".")
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = parts[: len(parts) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(f"{package}.")


def test_every_library_package_is_checked():
    packages = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert set(LIBRARIES) <= packages


@pytest.mark.parametrize(("importer", "forbidden"), RULES, ids=lambda value: str(value))
def test_imports_point_one_way(importer, forbidden):
    offending = [
        f"{path.relative_to(PACKAGE.parent)}:{line} imports {module}"
        for path in sorted((PACKAGE / importer).rglob("*.py"))
        for line, module in imported_modules(path)
        if any(within(module, f"waymo_unet.{package}") for package in forbidden)
    ]
    assert not offending, "\n".join(offending)


def test_imports_are_found_at_any_depth_and_resolved():
    source = (
        "from ..training import loop\n"
        "from . import unet\n"
        "def f():\n"
        "    import waymo_unet.reporting.charts\n"
        "    from waymo_unet import pipelines\n"
    )
    found = imports(source, "waymo_unet.models")
    assert (1, "waymo_unet.training.loop") in found
    assert (2, "waymo_unet.models.unet") in found
    assert (4, "waymo_unet.reporting.charts") in found
    assert (5, "waymo_unet.pipelines") in found
