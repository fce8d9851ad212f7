"""The package declares what it needs: ``pip install .`` must give a package that imports.

``pyproject.toml`` states the dependencies (lowest versions), ``requirements.txt`` pins the
versions the book is built and tested with; these tests keep the two in step with each other
and with what ``ser_utils`` actually imports.
"""
import ast
import importlib.metadata as md
import importlib.util
import re
import sys
import tomllib
from fnmatch import fnmatch
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ser_utils"


def _project():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _declared() -> dict[str, Requirement]:
    project = _project()["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        reqs += [Requirement(r) for r in extra]
    return {canonicalize_name(r.name): r for r in reqs}


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = re.split(r"==", line)
            pins[canonicalize_name(name)] = version.strip()
    return pins


def _imported_modules() -> set[str]:
    """Top-level names of every module that ser_utils imports (also inside functions)."""
    names = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"ser_utils", "__future__"}


def test_every_declared_dependency_is_pinned_within_its_range():
    pins = _pins()
    for name, req in _declared().items():
        assert name in pins, f"{name} is declared in pyproject.toml but not pinned"
        assert req.specifier.contains(pins[name], prereleases=True), (name, pins[name])


def _providers(module: str) -> set[str]:
    """Distributions that install ``module``, also a bare extension module (``x.cpython-*.so``,
    which ``packages_distributions`` does not see)."""
    found = {canonicalize_name(d) for d in md.packages_distributions().get(module, [])}
    if not found:
        spec = importlib.util.find_spec(module)
        origin = Path(spec.origin).resolve() if spec and spec.origin else None
        for dist in md.distributions():
            if origin and any(Path(dist.locate_file(f)).resolve() == origin
                              for f in dist.files or []):
                found.add(canonicalize_name(dist.metadata["Name"]))
    return found


def test_every_imported_module_comes_from_a_declared_distribution():
    declared = set(_declared())
    missing = {}
    for module in sorted(_imported_modules()):
        dists = _providers(module)
        assert dists, f"ser_utils imports {module!r}, which no installed distribution provides"
        if not dists & declared:
            missing[module] = sorted(dists)
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_every_data_file_of_the_package_is_package_data():
    patterns = _project()["tool"]["setuptools"]["package-data"]["ser_utils"]
    data = [p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts]
    assert data, "the package has data files (openSMILE configuration, tables)"
    unpackaged = [f for f in data if not any(fnmatch(f, pat) for pat in patterns)]
    assert not unpackaged, f"not in [tool.setuptools.package-data]: {unpackaged}"
