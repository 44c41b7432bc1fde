"""Config validation with messages that name the offending key, and the config's canonical form."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml


class ConfigError(ValueError):
    """The configuration breaks the schema; the message names every bad key."""


def _key_path(error: jsonschema.ValidationError) -> str:
    path = ".".join(str(part) for part in error.absolute_path)
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        path = ".".join(filter(None, [path, *extra]))
        return f"unknown key `{path}`"
    if error.validator == "required":
        return f"`{path or '<top level>'}`"
    return f"`{path or '<top level>'}`"


def validate_config(config: dict, schema_path: str | Path, source: str = "config") -> None:
    """Raise `ConfigError` listing each violation as `<source>: key `a.b`: reason`."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        lines = [f"{source}: {_key_path(e)}: {e.message}" for e in errors]
        raise ConfigError("invalid configuration\n  " + "\n  ".join(lines))


def _resolve(schema: dict, root: dict) -> dict:
    """A local `$ref` (`#/$defs/<name>`) resolved to the schema it names, merged with the referring keys."""
    while "$ref" in schema:
        reference = schema["$ref"]
        if not reference.startswith("#/"):
            raise ConfigError(f"schema: only local references are supported, got {reference!r}")
        target: Any = root
        for part in reference[2:].split("/"):
            target = target[part]
        schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def _canonical(value: Any, schema: dict | None, root: dict) -> Any:
    schema = _resolve(schema, root) if isinstance(schema, dict) else {}
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        order = [key for key in properties if key in value] + sorted((k for k in value if k not in properties), key=str)
        return {key: _canonical(value[key], properties.get(key, extra), root) for key in order}
    if isinstance(value, list):
        return [_canonical(item, schema.get("items"), root) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def canonical_config(config: dict, schema_path: str | Path) -> dict:
    """The config in one canonical form, so that configs that mean the same compare the same.

    Every mapping is ordered as the schema lists its keys (keys the schema does not name come after them,
    sorted), and a whole number is an int (`1.0` becomes `1`; Python treats both alike in arithmetic). Key
    order and `1` against `1.0` therefore never reach Snakemake's params as a change, and scripts that
    iterate a mapping see one order whatever the config file's. Run it on a validated config.
    """
    schema = yaml.safe_load(Path(schema_path).read_text())
    return _canonical(config, schema, schema)
