"""Loading the Lua scripts that ship inside each package."""

from __future__ import annotations

from functools import cache
from importlib.resources import files


@cache
def load_script(package: str, name: str, *, include: tuple[str, ...] = ()) -> str:
    """`<package>/lua/<name>.lua`, after that folder's `_common.lua` (if any) and `include`.

    `include` names Lua libraries of other packages as "package:file", e.g. the token bucket
    ("ratelimit:bucket"), so one script can do a whole step in one round trip.
    """
    parts = [_read(*lib.split(":", 1)) for lib in include]
    common = files(package).joinpath("lua", "_common.lua")
    if common.is_file():
        parts.append(common.read_text())
    parts.append(_read(package, name))
    return "\n".join(parts)


def _read(package: str, name: str) -> str:
    return files(package).joinpath("lua", f"{name}.lua").read_text()
