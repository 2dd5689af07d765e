"""The package's shape: no import circle (function-level imports included), no
private name used across modules, no module over 450 lines, no function over 60."""

import ast
import os

import pytest

from conftest import ROOT

PACKAGE = os.path.join(ROOT, "src", "helpers")
MODULES = sorted(f[:-3] for f in os.listdir(PACKAGE) if f.endswith(".py"))


def _tree(module):
    with open(os.path.join(PACKAGE, module + ".py")) as f:
        return ast.parse(f.read())


def _imports(module):
    """(module it imports, name taken from it or None) for every relative import,
    wherever it is in the file."""
    out = []
    for node in ast.walk(_tree(module)):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            for alias in node.names:
                if node.module:
                    out.append((node.module.split(".")[0], alias.name))
                else:
                    out.append((alias.name, None))
    return out


def test_no_import_circle():
    graph = {m: {target for target, _ in _imports(m) if target in MODULES} for m in MODULES}
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

    for m in MODULES:
        circle = visit(m)
        assert circle is None, " -> ".join(circle)


@pytest.mark.parametrize("module", MODULES)
def test_no_private_name_from_another_module(module):
    tree = _tree(module)
    private = [f"{target}.{name}" for target, name in _imports(module)
               if name and name.startswith("_") and not name.startswith("__")]
    private += [f"{n.value.id}.{n.attr}" for n in ast.walk(tree)
                if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
                and n.value.id in MODULES and n.value.id != module
                and n.attr.startswith("_") and not n.attr.startswith("__")]
    assert not private


@pytest.mark.parametrize("module", MODULES)
def test_modules_and_functions_stay_short(module):
    with open(os.path.join(PACKAGE, module + ".py")) as f:
        lines = len(f.read().splitlines())
    assert lines <= 450, f"{module}.py has {lines} lines"
    long = [(n.name, n.end_lineno - n.lineno + 1) for n in ast.walk(_tree(module))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno - n.lineno >= 60]
    assert not long, f"functions over 60 lines in {module}: {long}"


@pytest.mark.parametrize("module", MODULES)
def test_no_library_module_runs_as_a_script(module):
    if module == "__main__":
        return
    tree = _tree(module)
    mains = [n for n in tree.body if isinstance(n, ast.If) and "__main__" in ast.dump(n.test)]
    # the only branch allowed says the command's form (helpers.usage): `python -m helpers.run`
    # would otherwise do nothing and exit 0
    redirect = [ast.dump(n) for n in ast.parse(
        f"from .usage import wrong_form\nwrong_form({module!r})").body]
    bodies = [[ast.dump(b) for b in n.body] for n in mains]
    assert all(b == redirect for b in bodies), \
        f"{module} has an `if __name__ == '__main__'` branch: commands live in helpers.cli"
