"""Who may call each route, as the OpenAPI schema says it.

Every route declares its callers with exactly one of ``api.deps.require(...)``,
``api.deps.require_in_call(...)`` or ``api.deps.PUBLIC``; all are dependency
functions carrying ``golos_roles`` (the roles admitted, or None for anyone).
:func:`route_access` finds those declarations in a route's dependency tree;
:func:`describe_security` writes them into the schema: a route with roles lists
its roles as the scopes of each security scheme (as FastAPI already does), a
public route says that no credential is needed (OpenAPI's empty requirement
``{}`` first, then the optional schemes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from api.accounts.schemas import Role

# The key of an operation that lists its roles for people reading the schema.
ROLES_KEY = "x-golos-roles"


def _declarations(dependant: Dependant, found: dict[int, Callable[..., Any]]) -> None:
    for sub in dependant.dependencies:
        call = sub.call
        if call is not None and hasattr(call, "golos_roles"):
            found[id(call)] = call
        _declarations(sub, found)


def route_access(dependant: Dependant) -> list[frozenset[Role] | None]:
    """Each distinct declaration of who may call a route (its ``dependant``): a set
    of roles for ``require(...)``, None for ``PUBLIC``. A well-declared route has
    exactly one. Pure."""
    found: dict[int, Callable[..., Any]] = {}
    _declarations(dependant, found)
    return [getattr(call, "golos_roles") for call in found.values()]  # noqa: B009


@dataclass(frozen=True)
class RouteInfo:
    """One API route of an application as it is served (its routers' prefixes and
    dependencies applied)."""

    path: str
    methods: frozenset[str]
    dependant: Dependant
    include_in_schema: bool
    name: str


def api_routes(app: FastAPI) -> list[RouteInfo]:
    """Every API route of ``app``, including those of included routers (which this
    FastAPI keeps behind ``_IncludedRouter`` entries of ``app.routes``)."""
    found: list[RouteInfo] = []
    for context in iter_route_contexts(app.routes):
        route = context.original_route
        if not isinstance(route, APIRoute):
            continue
        dependant = getattr(context, "dependant", None) or route.dependant
        found.append(
            RouteInfo(
                path=getattr(context, "path_format", None) or route.path_format,
                methods=frozenset(getattr(context, "methods", None) or route.methods or ()),
                dependant=dependant,
                include_in_schema=bool(getattr(context, "include_in_schema", True))
                and route.include_in_schema,
                name=route.name,
            )
        )
    return found


def describe_security(openapi: dict[str, Any], app: FastAPI) -> dict[str, Any]:
    """The schema with each operation's security saying who may call it (changed in
    place and returned; calling it again changes nothing)."""
    schemes = list(openapi.get("components", {}).get("securitySchemes", {}))
    paths = openapi.get("paths", {})
    for route in api_routes(app):
        if not route.include_in_schema:
            continue
        declared = route_access(route.dependant)
        if len(declared) != 1:
            continue  # tests/api/test_authorisation.py fails such a route
        roles = declared[0]
        for method in route.methods:
            operation = paths.get(route.path, {}).get(method.lower())
            if operation is None:
                continue
            if roles is None:
                operation["security"] = [{}, *({name: []} for name in schemes)]
                operation[ROLES_KEY] = []
            else:
                names = sorted(map(str, roles))
                operation["security"] = [{name: names} for name in schemes]
                operation[ROLES_KEY] = names
    return openapi


def install(app: FastAPI) -> None:
    """Make ``app``'s OpenAPI schema (``/openapi.json``, the docs) describe who may
    call each route: call once in ``create_app`` after the routes are added."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = describe_security(generate(), app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
