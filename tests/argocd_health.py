"""Run Argo CD's health check for ProcessorConnections (docs/argocd/health.lua) the way Argo CD does.

Argo CD runs health checks in gopher-lua, a Lua 5.1, with only the base,
package, table and a safe os library open (argo-cd util/lua/lua.go): no
string, math, io or debug library, and so no string methods either. The
script gets the object as the global ``obj`` and returns a table with
``status`` and ``message``. This runs it in a real Lua 5.1 (lupa's) with the
same libraries removed, so a script that would fail in Argo CD fails here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lupa import lua51

LuaError = lua51.LuaError  # what a failing script raises

ROOT = Path(__file__).resolve().parents[1]
HEALTH_LUA = ROOT / "docs" / "argocd" / "health.lua"
ARGOCD_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}
# What Argo CD does not open for health checks.
_CLOSED_LIBRARIES = ("string", "math", "io", "debug", "coroutine", "os", "dofile", "loadfile")


def health(obj: dict[str, Any], script: str | None = None) -> dict[str, str]:
    """The health Argo CD would report for ``obj``: ``{"status": ..., "message": ...}``."""
    lua = lua51.LuaRuntime(register_eval=False, register_builtins=False)
    env = lua.globals()
    for name in _CLOSED_LIBRARIES:
        env[name] = None
    lua.execute('getmetatable("").__index = nil')  # no string library, no ("x"):len()
    env.obj = lua.table_from(obj, recursive=True)
    result = lua.execute(HEALTH_LUA.read_text() if script is None else script)
    if result is None:
        raise AssertionError("the health check returned nothing; Argo CD wants a table")
    status, message = result["status"], result["message"]
    if status not in ARGOCD_STATUSES:
        raise AssertionError(f"{status!r} is not an Argo CD health status")
    return {"status": str(status), "message": "" if message is None else str(message)}
