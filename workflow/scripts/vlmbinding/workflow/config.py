"""Configuration checks run before any job: the JSON Schema, then what a schema cannot say.

Errors name the offending key (`dataset.colors[6]`) so the user knows what to edit.
"""

from __future__ import annotations

import copy
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator, validators


class ConfigError(ValueError):
    """A configuration that the workflow cannot run."""


def _with_defaults(validator_class):
    """A validator that fills in each property's schema default (a deep copy)."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return validators.extend(validator_class, {"properties": set_defaults})


def key_path(path) -> str:
    """jsonschema's error path as a config key: dataset.colors[6]."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _describe(error) -> str:
    if error.validator == "enum" and len(error.validator_value) > 12:
        return f"{error.instance!r} is not one of the allowed values (see config/schema.yaml)"
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        return f"{error.message}; allowed keys: {allowed}"
    if error.validator == "contains" and "const" in error.validator_value:
        return f"{error.instance!r} must include {error.validator_value['const']!r}"
    if error.validator == "oneOf":
        return f"{error.instance!r} is not valid: " + "; or ".join(e.message for e in error.context)
    return error.message


def validate_config(config: dict, schema_path: str | Path) -> dict:
    """Validate `config` in place against the schema, filling defaults; return it.

    Raises ConfigError listing every violation with its key.
    """
    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = _with_defaults(Draft202012Validator)(schema)
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.path)))
    if errors:
        lines = [f"  {key_path(e.absolute_path)}: {_describe(e)}" for e in errors]
        raise ConfigError("invalid configuration:\n" + "\n".join(lines))
    return config


def resolve_layers(layers, n_layers: int, key: str = "analysis.layers") -> list[int]:
    """Layer spec ('all' or indices, negative from the end) -> sorted 0-based indices."""
    if layers == "all":
        return list(range(n_layers))
    if not layers:
        raise ConfigError(f"{key}: the layer list is empty")
    out = []
    for layer in layers:
        if not -n_layers <= layer < n_layers:
            raise ConfigError(
                f"{key}: layer {layer} is out of range for a model with {n_layers} blocks "
                f"(use 0..{n_layers - 1} or -{n_layers}..-1)"
            )
        out.append(layer % n_layers)
    if len(set(out)) != len(out):
        raise ConfigError(f"{key}: {layers} names a block twice")
    return sorted(out)
