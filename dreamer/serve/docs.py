"""The API's documentation page (`/docs`), written from the app's own OpenAPI document: every operation with its
parameters, form fields and answers. Plain HTML, no script: nothing is fetched from elsewhere (the CSP allows none,
and the server may be offline), and it cannot drift from /openapi.json."""

from pathlib import Path

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

TEMPLATES = Path(__file__).resolve().parent / "templates"  # package data
METHODS = ("get", "post", "delete")
_env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined)

router = APIRouter(include_in_schema=False)


@router.get("/docs")
def docs(request: Request):
    """The page, from request.app's OpenAPI document."""
    spec = request.app.openapi()
    operations = [_operation(spec, path, method, item[method]) for path, item in spec["paths"].items()
                  for method in METHODS if method in item]
    return HTMLResponse(_env.get_template("docs.html").render(info=spec["info"], operations=operations))


def _operation(spec: dict, path: str, method: str, operation: dict) -> dict:
    """What the page shows of one operation."""
    fields = []
    for parameter in operation.get("parameters", []):
        fields.append((parameter["name"], parameter["in"], parameter.get("required", False),
                       _schema(spec, parameter.get("schema", {})), parameter.get("description", "")))
    body = operation.get("requestBody", {}).get("content", {})
    for kind, content in body.items():
        schema = _resolve(spec, content.get("schema", {}))
        for name, field in schema.get("properties", {}).items():
            fields.append((name, kind, name in schema.get("required", ()), _schema(spec, field),
                           field.get("description", "")))
    answers = [(status, answer.get("description", "")) for status, answer in operation.get("responses", {}).items()]
    return {"method": method.upper(), "path": path, "id": operation.get("operationId", ""),
            "summary": operation.get("summary", ""), "description": operation.get("description", ""),
            "fields": fields, "answers": answers}


def _resolve(spec: dict, schema: dict) -> dict:
    """`schema`, or the component its $ref names."""
    ref = schema.get("$ref", "")
    return spec["components"]["schemas"][ref.rsplit("/", 1)[-1]] if ref else schema


def _schema(spec: dict, schema: dict) -> str:
    """A field's type in a few words: "integer 32-512", "one of a, b", "file", "array of string"."""
    schema = _resolve(spec, schema)
    if "anyOf" in schema:
        return " or ".join(_schema(spec, part) for part in schema["anyOf"] if part.get("type") != "null")
    if "enum" in schema:
        return "one of " + ", ".join(map(str, schema["enum"]))
    kind = schema.get("type", "")
    if kind == "array":
        return f"array of {_schema(spec, schema.get('items', {}))}"
    if kind == "string" and schema.get("format") == "binary" or schema.get("contentMediaType"):
        return "file"
    bounds = [f"{schema[key]:g}" for key in ("minimum", "maximum") if key in schema]
    return " ".join([kind, "-".join(bounds)]).strip() + (f" ({schema['pattern']})" if "pattern" in schema else "")
