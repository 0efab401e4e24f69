"""Check requests and responses against GitHub's OpenAPI description (3.0).

OpenAPI 3.0 schemas are turned into JSON Schema (draft 4, which 3.0 builds on):
``nullable: true`` becomes a ``"null"`` alternative; everything else is kept.
"""

from __future__ import annotations

import json
import os
import re
import urllib.parse
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
BASIC_ERROR = {"$ref": "#/components/schemas/basic-error"}
FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def _is_date_time(value: object) -> bool:
    return not isinstance(value, str) or ("T" in value and bool(datetime.fromisoformat(value)))


@FORMATS.checks("uri")
def _is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urllib.parse.urlsplit(value)
    return bool(parts.scheme) and " " not in value


def spec_path() -> Path:
    shared = os.environ.get("PTM_TRIAGE_SHARED")
    root = Path(shared) if shared else Path(__file__).resolve().parents[1].parent / "shared"
    return root / "github-rest" / "openapi-subset.json"


USER_ACCESS = Path(__file__).resolve().parent / "github_sim" / "openapi-user-access.json"
"""The endpoints sign-in calls with a user's token, cut from the same @octokit/openapi release as the
shared subset (``scripts/extract_openapi.py``), which covers only what an installation calls."""


@cache
def load_spec() -> dict[str, Any]:
    spec: dict[str, Any] = json.loads(spec_path().read_text())
    extra = json.loads(USER_ACCESS.read_text())
    spec["paths"] = {**extra["paths"], **spec["paths"]}
    for kind, items in extra["components"].items():
        spec["components"][kind] = {**items, **spec["components"].get(kind, {})}
    return spec


def to_json_schema(node: Any) -> Any:
    """An OpenAPI 3.0 schema (or any part of the spec) as JSON Schema."""
    if isinstance(node, list):
        return [to_json_schema(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_json_schema(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") is not True or "$ref" in node:
        return out
    if "type" in out:
        out["type"] = [out["type"], "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        return out
    return {"anyOf": [{"type": "null"}, out]}


@cache
def _components() -> dict[str, Any]:
    return to_json_schema(load_spec()["components"])


@cache
def _templates() -> list[tuple[str, re.Pattern[str]]]:
    """Path templates with matchers, most literal segments first (``issues/events`` before
    ``issues/{issue_number}``)."""
    def matcher(template: str) -> re.Pattern[str]:
        pattern = re.sub(r"\{(\w+)\}", lambda m: f"(?P<{m[1]}>{'.+' if m[1] == 'path' else '[^/]+'})",
                         template)
        return re.compile(f"^{pattern}$")

    def literals(template: str) -> int:
        return sum(1 for seg in template.split("/") if seg and not seg.startswith("{"))

    paths = sorted(load_spec()["paths"], key=lambda t: (-literals(t), t))
    return [(t, matcher(t)) for t in paths]


def _match(path: str) -> tuple[str, dict[str, str]]:
    path = path.split("?", 1)[0]
    for template, pattern in _templates():
        if m := pattern.match(path):
            return template, m.groupdict()
    raise AssertionError(f"{path!r} matches no path in the GitHub OpenAPI description")


def find_operation(method: str, path: str) -> tuple[str, dict[str, Any]]:
    """The path template a concrete path belongs to, and the operation for ``method``."""
    template, _ = _match(path)
    item = load_spec()["paths"][template]
    operation = item.get(method.lower())
    if operation is None:
        allowed = sorted(m.upper() for m in item if m in HTTP_METHODS)
        raise AssertionError(f"{method.upper()} is not an operation of {template} (allowed: {allowed})")
    return template, operation


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        *_, section, name = node["$ref"].split("/")
        node = load_spec()["components"][section][name]
    return node


def _validate(instance: Any, schema: dict[str, Any], what: str) -> None:
    root = {"allOf": [to_json_schema(schema)], "components": _components()}
    validator = jsonschema.Draft4Validator(root, format_checker=FORMATS)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
    if errors:
        details = "\n".join(_describe(e) for e in errors[:10])
        raise AssertionError(f"{what} does not match the OpenAPI schema:\n{details}")


def _describe(error: jsonschema.ValidationError) -> str:
    """The error's place and message; for anyOf/oneOf, the alternative that came closest."""
    while error.context:
        error = jsonschema.exceptions.best_match(error.context)
    return f"  at {'/'.join(map(str, error.absolute_path)) or '<root>'}: {error.message[:300]}"


def _parameters(template: str, operation: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    params = [*load_spec()["paths"][template].get("parameters", []), *operation.get("parameters", [])]
    resolved = (_resolve(p) for p in params)
    return {(p["in"], p["name"]): p for p in resolved}


def _coerce(raw: str, schema: dict[str, Any]) -> Any:
    """A query or path string as the type its schema asks for, when it parses as one."""
    kind = _resolve(schema).get("type")
    try:
        if kind == "integer":
            return int(raw)
        if kind == "number":
            return float(raw)
    except ValueError:
        return raw
    if kind == "boolean" and raw in ("true", "false"):
        return raw == "true"
    return raw


def validate_request(method: str, path: str, query: dict[str, str] | None = None,
                     json_body: Any = None) -> None:
    template, operation = find_operation(method, path)
    what = f"{method.upper()} {path}"
    params = _parameters(template, operation)
    _, path_values = _match(path)
    values = [("path", k, v) for k, v in path_values.items()]
    values += [("query", k, v) for k, v in (query or {}).items()]
    for location, name, raw in values:
        param = params.get((location, name))
        if param is None:
            known = sorted(n for loc, n in params if loc == location)
            raise AssertionError(f"{what}: unknown {location} parameter {name!r} (known: {known})")
        _validate(_coerce(raw, param.get("schema", {})), param.get("schema", {}),
                  f"{what} {location} parameter {name!r}")
    body_spec = operation.get("requestBody")
    if json_body is None:
        if body_spec is not None and _resolve(body_spec).get("required"):
            raise AssertionError(f"{what}: the request body is required")
        return
    if body_spec is None:
        raise AssertionError(f"{what}: the operation takes no request body")
    content = _resolve(body_spec)["content"].get("application/json")
    if content is None:
        raise AssertionError(f"{what}: the request body is not JSON in the spec")
    _validate(json_body, content["schema"], f"{what} request body")


def validate_response(method: str, path: str, status: int, json_body: Any) -> None:
    """Errors with a status the operation does not document are checked as ``basic-error``,
    the shape every GitHub error has."""
    _, operation = find_operation(method, path)
    what = f"{method.upper()} {path} -> {status}"
    responses = operation["responses"]
    response = responses.get(str(status)) or responses.get("default")
    if response is None:
        if status < 400:
            raise AssertionError(f"{what}: status not documented (documented: {sorted(responses)})")
        _validate(json_body, BASIC_ERROR, f"{what} error body")
        return
    content = _resolve(response).get("content", {}).get("application/json")
    if content is None:
        if json_body not in (None, b"", ""):
            raise AssertionError(f"{what}: the spec documents no body, got {json_body!r:.200}")
        return
    _validate(json_body, content["schema"], f"{what} body")
