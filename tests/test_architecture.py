"""The package's shape: wings in the order helpers.WINGS gives, each importing only the
wings before it; no import circle between modules; no private name used across
modules; imports at the top of modules except heavy optional ones, each with its
reason; no module over 450 lines, no function over 60; tests mirror the wings."""

import ast
import os
import re
import subprocess
import sys

import pytest

import helpers
from conftest import ROOT

PACKAGE = os.path.join(ROOT, "src", "helpers")
# wing -> module names, read from the folders themselves
LAYOUT = {w: sorted(f[:-3] for f in os.listdir(os.path.join(PACKAGE, w))
                    if f.endswith(".py") and f != "__init__.py")
          for w in helpers.WINGS}
MODULES = [(w, m) for w, ms in LAYOUT.items() for m in ms]
WING_OF = {m: w for w, m in MODULES}
# imported inside a function on purpose: heavy and needed by one path only
LAZY = ("papermill", "nbformat", "nbconvert", "nbclient", "jupyter_client", "plotly", "dask", "distributed",
        "h5py", "pyarrow", "faiss.contrib.clustering")


def _path(wing, module):
    return os.path.join(PACKAGE, wing, module + ".py")


def _tree(wing, module):
    with open(_path(wing, module)) as f:
        return ast.parse(f.read())


def _imports(wing, module):
    """(wing, module, name taken from it or None) for every relative import, wherever
    it is in the file."""
    out = []
    for node in ast.walk(_tree(wing, module)):
        if not isinstance(node, ast.ImportFrom) or not node.level:
            continue
        parts = (node.module or "").split(".") if node.module else []
        if node.level == 1:  # same wing
            target_wing, rest = wing, parts
        else:
            target_wing, rest = parts[0], parts[1:]
        for alias in node.names:
            if rest:
                out.append((target_wing, rest[0], alias.name))
            else:
                out.append((target_wing, alias.name, None))
    return out


def test_the_folders_are_the_documented_wings():
    folders = sorted(d for d in os.listdir(PACKAGE)
                     if os.path.isdir(os.path.join(PACKAGE, d)) and not d.startswith("__"))
    assert folders == sorted(helpers.WINGS)
    flat = sorted(f for f in os.listdir(PACKAGE) if f.endswith(".py"))
    assert flat == ["__init__.py", "__main__.py"], "modules live in a wing"
    for w in helpers.WINGS:
        doc = ast.get_docstring(ast.parse(open(os.path.join(PACKAGE, w, "__init__.py")).read()))
        assert doc and "May import:" in doc, f"helpers/{w}/__init__.py says what it owns and may import"


@pytest.mark.parametrize("wing,module", MODULES)
def test_a_wing_imports_only_the_wings_before_it(wing, module):
    rank = helpers.WINGS.index
    upward = [f"{w}.{m}" for w, m, _ in _imports(wing, module) if rank(w) > rank(wing)]
    assert not upward, f"{wing}.{module} imports a later wing: {upward}"


@pytest.mark.parametrize("wing", helpers.WINGS)
def test_a_wings_docstring_names_what_it_may_import(wing):
    doc = ast.get_docstring(ast.parse(open(os.path.join(PACKAGE, wing, "__init__.py")).read()))
    allowed = doc.split("May import:")[1]
    used = {w for m in LAYOUT[wing] for w, _, _ in _imports(wing, m)} - {wing}
    missing = [w for w in used if w not in allowed]
    assert not missing, f"helpers/{wing}/__init__.py does not list {missing} that it imports"


def test_no_import_circle():
    graph = {m: {t for _, t, _ in _imports(WING_OF[m], m) if t in WING_OF} for m in WING_OF}
    done, path = set(), []

    def visit(m):
        if m in path:
            return path[path.index(m):] + [m]
        if m in done:
            return None
        path.append(m)
        for nxt in sorted(graph[m]):
            found = visit(nxt)
            if found:
                return found
        path.pop()
        done.add(m)
        return None

    for m in WING_OF:
        circle = visit(m)
        assert circle is None, " -> ".join(circle)


@pytest.mark.parametrize("wing,module", MODULES)
def test_no_private_name_from_another_module(wing, module):
    tree = _tree(wing, module)
    private = [f"{m}.{name}" for _, m, name in _imports(wing, module)
               if name and name.startswith("_") and not name.startswith("__")]
    private += [f"{n.value.id}.{n.attr}" for n in ast.walk(tree)
                if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
                and n.value.id in WING_OF and n.value.id != module
                and n.attr.startswith("_") and not n.attr.startswith("__")]
    assert not private


@pytest.mark.parametrize("wing,module", MODULES)
def test_imports_at_the_top_unless_heavy_and_optional_with_a_reason(wing, module):
    with open(_path(wing, module)) as f:
        lines = f.read().splitlines()
    tree = _tree(wing, module)
    top = {id(n) for n in tree.body}
    top |= {id(b) for n in tree.body if isinstance(n, ast.If) and "__main__" in ast.dump(n.test)
            for b in n.body}  # the module form's redirect (test_no_library_module_runs_as_a_script)
    inside = [n for n in ast.walk(tree)
              if isinstance(n, (ast.Import, ast.ImportFrom)) and id(n) not in top]
    bad = []
    for n in inside:
        name = n.module if isinstance(n, ast.ImportFrom) else n.names[0].name
        lazy = not (isinstance(n, ast.ImportFrom) and n.level) and name.startswith(LAZY)
        reason = "#" in lines[n.lineno - 1] or lines[n.lineno - 2].strip().startswith("#")
        if not (lazy and reason):
            bad.append(f"line {n.lineno}: {name}")
    assert not bad, f"imports inside functions of {wing}.{module} (move to the top, or say why): {bad}"


@pytest.mark.parametrize("wing,module", MODULES)
def test_modules_and_functions_stay_short(wing, module):
    with open(_path(wing, module)) as f:
        lines = len(f.read().splitlines())
    assert lines <= 450, f"{module}.py has {lines} lines"
    long = [(n.name, n.end_lineno - n.lineno + 1) for n in ast.walk(_tree(wing, module))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno >= 60]
    assert not long, f"functions over 60 lines in {module}: {long}"


@pytest.mark.parametrize("wing,module", MODULES)
def test_no_library_module_runs_as_a_script(wing, module):
    mains = [n for n in _tree(wing, module).body if isinstance(n, ast.If) and "__main__" in ast.dump(n.test)]
    # the only branch allowed says the command's form (helpers.core.usage): `python -m
    # helpers.pipeline.run` would otherwise do nothing and exit 0
    redirect = [ast.dump(n) for n in ast.parse(
        f"from ..core.usage import wrong_form\nwrong_form({module!r})").body]
    assert all([ast.dump(b) for b in n.body] == redirect for n in mains), \
        f"{module} has an `if __name__ == '__main__'` branch: commands live in helpers.pipeline.cli"


def test_tests_mirror_the_wings():
    """Each module's tests sit in tests/<its wing>/; the cross-cutting ones (crash,
    concurrency, bad input, benchmarks, this file) at the top."""
    for w in helpers.WINGS:
        folder = os.path.join(ROOT, "tests", w)
        if not os.path.isdir(folder):
            continue
        for f in os.listdir(folder):
            m = re.fullmatch(r"test_(\w+)\.py", f)
            if m and m.group(1) in WING_OF:
                assert WING_OF[m.group(1)] == w, f"tests/{w}/{f} tests a module of {WING_OF[m.group(1)]}"


def test_old_flat_paths_import_the_wings_module(tmp_path):
    code = ("import warnings; warnings.simplefilter('error', DeprecationWarning)\n"
            "import helpers.index.build as new\n"
            "try:\n    from helpers import build\nexcept DeprecationWarning as w:\n    print(w)\n"
            "warnings.simplefilter('ignore')\n"
            "from helpers import build\nimport helpers.files\n"
            "from helpers.files import atomic_path\nimport helpers.core.files as files\n"
            "assert build is new and helpers.files is files and atomic_path is files.atomic_path\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "helpers.build is now helpers.index.build"


@pytest.mark.parametrize("module,says", [
    ("helpers.build", "use: python -m helpers build\n"),
    ("helpers.run", "use: python -m helpers run\n"),
    ("helpers.pipeline.run", "use: python -m helpers run\n"),
    ("helpers.index.measure", "use: python -m helpers measure\n"),
    ("helpers.files", "helpers.files is a library module (helpers.core.files), not a command: "
                      "use python -m helpers {run,build,screen,measure}\n"),
])
def test_python_m_an_old_path_is_never_a_silent_no_op(tmp_path, module, says):
    out = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert out.stderr == says and out.stdout == ""
    assert out.returncode == (1 if module == "helpers.files" else 2)
