"""One policy for query parameters across the HTTP edge: a parameter no route declares is a 400.

Consumes each request and the route FastAPI matched; produces nothing, or `InvalidRequest`
naming every parameter the route does not know, before any value is checked: a mistyped
filter (`?stauts=`) or a stale client must not get an answer that silently ignores it. The
known names are the aliases the route declares (its own `Query` parameters and those of its
dependencies), so the OpenAPI document and this check can never disagree.

Installed app-wide by `api.app.create_app`; WebSocket routes parse their query themselves.
"""

from __future__ import annotations

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.requests import HTTPConnection

from api.errors import FieldError, InvalidRequest


async def only_declared_query(connection: HTTPConnection) -> None:
    """The app-wide dependency: raise a 400 if the query names a parameter the route lacks.

    Takes an `HTTPConnection` because app-wide dependencies also run for WebSocket routes,
    which this leaves alone (they close with 4400 naming a bad parameter themselves)."""
    route = connection.scope.get("route")
    if not isinstance(route, APIRoute) or not connection.query_params:
        return
    known = declared_query(route)
    unknown = sorted(set(connection.query_params) - known)
    if unknown:
        allowed = ", ".join(sorted(known)) or "none"
        raise InvalidRequest([FieldError(name, f"unknown parameter (allowed: {allowed})")
                              for name in unknown])


def declared_query(route: APIRoute) -> frozenset[str]:
    """Every query parameter `route` declares, as the client spells it (a walk of a few
    dependants, done only for requests that carry a query)."""
    return frozenset(_aliases(route.dependant))


def _aliases(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _aliases(sub)
    return names
