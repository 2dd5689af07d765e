"""The configuration is the notebooks' parameters cells, once: they must agree."""

import ast
import os

import papermill as pm
import pytest

from conftest import NOTEBOOKS
from helpers.core import config


@pytest.mark.parametrize("name", config.ORDER)
def test_parameters_cells_equal_the_configuration(name):
    declared = pm.inspect_notebook(os.path.join(NOTEBOOKS, name + ".ipynb"))
    assert list(declared) == config.DECLARED[name]  # every parameter papermill can read, in order
    cell = {k: ast.literal_eval(v["default"]) for k, v in declared.items()}
    assert cell == config.defaults(name)


def test_every_parameter_has_a_meaning():
    assert all(meaning for _, meaning in config.PARAMETERS.values())
    used = {k for names in config.DECLARED.values() for k in names}
    assert used == set(config.PARAMETERS) | {"factories"}
