"""The API's documentation page, rendered here from the OpenAPI schema: no Swagger UI from a
CDN, so it works on a machine without internet (the schema itself is at /openapi.json)."""

from __future__ import annotations

import html
import json
from typing import Any


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref", "")
    if ref.startswith("#/components/schemas/"):
        return spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    return schema


def _type(field: dict[str, Any], spec: dict[str, Any]) -> str:
    if "anyOf" in field:
        return " | ".join(_type(option, spec) for option in field["anyOf"])
    if "enum" in field:
        return " | ".join(json.dumps(v) for v in field["enum"])
    if "$ref" in field:
        return field["$ref"].rsplit("/", 1)[1]
    if field.get("type") == "array":
        return f"list of {_type(field.get('items', {}), spec)}"
    return str(field.get("type", "any"))


_LIMITS = {
    "minLength": "length ≥ {}",
    "maxLength": "length ≤ {}",
    "minimum": "≥ {}",
    "maximum": "≤ {}",
    "exclusiveMinimum": "> {}",
    "exclusiveMaximum": "< {}",
}


def _fields(schema: dict[str, Any], spec: dict[str, Any]) -> str:
    schema = _resolve(schema, spec)
    required = set(schema.get("required", ()))
    rows = []
    for name, field in schema.get("properties", {}).items():
        limits = [text.format(field[key]) for key, text in _LIMITS.items() if key in field]
        default = "required" if name in required else f"default {json.dumps(field.get('default'))}"
        notes = ", ".join([default, *limits])
        description = field.get("description", "")
        rows.append(
            f"<tr><td><code>{html.escape(name)}</code></td><td>{html.escape(_type(field, spec))}"
            f"</td><td>{html.escape(notes)}</td><td>{html.escape(description)}</td></tr>"
        )
    return "<table>" + "".join(rows) + "</table>" if rows else ""


def docs_page(spec: dict[str, Any]) -> str:
    """One HTML page: every endpoint with its description and request fields."""
    parts = []
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            body = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            description = html.escape(op.get("description", "")).replace("\n\n", "<br>")
            parts.append(
                f"<section><h2><span>{method.upper()}</span> <code>{html.escape(path)}</code>"
                f"</h2><p>{description}</p>{_fields(body.get('schema', {}), spec)}</section>"
            )
    title = html.escape(spec.get("info", {}).get("title", "API"))
    return f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>{title} API</title><style>
body {{ font: 15px/1.5 system-ui, sans-serif; max-width: 920px; margin: 2em auto; color: #222; }}
h2 {{ font-size: 17px; margin: 1.6em 0 .3em; }} h2 span {{ color: #0a6; }}
table {{ border-collapse: collapse; width: 100%; font-size: 14px; }}
td {{ border-top: 1px solid #ddd; padding: 4px 8px; vertical-align: top; }}
</style></head><body><h1>{title} API</h1>
<p>JSON in, JSON out (<code>/api/generate</code> streams server-sent events). Machine-readable
schema: <a href="/openapi.json">/openapi.json</a>. The page itself: <a href="/">/</a>.</p>
{"".join(parts)}</body></html>
"""
