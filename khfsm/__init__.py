"""khfsm: the assessment server behind AI-proctored fitness tests.

`khfsm.Site` runs the engine inside an application's own asyncio/AnyIO loop (see
`khfsm.site`); it is imported on first use, so that `import khfsm` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from khfsm.errors import KhfsmError
    from khfsm.server.protocol import RequestError
    from khfsm.server.push import Push
    from khfsm.site import LaneHandle, Site

__all__ = ["KhfsmError", "LaneHandle", "Push", "RequestError", "Site", "__version__"]

_PUBLIC = {
    "Site": "khfsm.site",
    "LaneHandle": "khfsm.site",
    "Push": "khfsm.server.push",
    "RequestError": "khfsm.server.protocol",
    "KhfsmError": "khfsm.errors",
}


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'khfsm' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(module), name)
