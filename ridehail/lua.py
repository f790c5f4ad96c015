"""Loading the Lua scripts that ship inside each package."""

from __future__ import annotations

from functools import cache
from importlib.resources import files


@cache
def load_script(package: str, name: str) -> str:
    """The source of `<package>/lua/<name>.lua`, after that folder's `_common.lua` if any."""
    folder = files(package).joinpath("lua")
    common = folder.joinpath("_common.lua")
    prelude = common.read_text() if common.is_file() else ""
    return prelude + "\n" + folder.joinpath(f"{name}.lua").read_text()
