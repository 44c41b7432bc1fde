"""Config validation with messages that name the offending key."""

from __future__ import annotations

from pathlib import Path

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
