"""One exception root: every error khfsm defines is a `KhfsmError`, so an integrator can tell
the errors worded for people from bugs with one `except`."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import click

from khfsm.errors import KhfsmError


def test_every_exception_khfsm_defines_has_the_one_root() -> None:
    import khfsm.server  # a folder without __init__.py: walk_packages does not enter it

    modules = [
        *pkgutil.walk_packages(khfsm.__path__, "khfsm."),
        *pkgutil.walk_packages(khfsm.server.__path__, "khfsm.server."),
    ]
    defined: list[type[BaseException]] = []
    for module_info in modules:
        if module_info.name.startswith("khfsm.models"):
            continue  # model conversion scripts, not the engine
        module = importlib.import_module(module_info.name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == module.__name__:
                defined.append(value)
    # click's own errors are how the CLI reports; they carry the same operator wording.
    outside = [
        f"{cls.__module__}.{cls.__qualname__}"
        for cls in defined
        if not issubclass(cls, KhfsmError | click.ClickException)
    ]
    assert len(defined) >= 20
    assert outside == []
