"""The documentation's examples run: every docstring example of the library."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import mnmf

MODULES = sorted(
    name
    for _, name, _ in pkgutil.walk_packages(mnmf.__path__, prefix="mnmf.")
    if not name.rsplit(".", 1)[-1].startswith("_")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed"
