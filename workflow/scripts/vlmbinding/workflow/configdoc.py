"""config/README.md from the schema's descriptions: one table per block, key by key.

Regenerate after changing config/schema.yaml (a test keeps the two in step):

    make config-doc     # = PYTHONPATH=workflow/scripts python -m vlmbinding.workflow.configdoc
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml

HEADER = """\
# Configuration keys

Generated from `config/schema.yaml` by `make config-doc`; do not edit by hand.
`config/config.yaml` is the paper's setup with a comment on every key; a config file only
needs the keys it changes, everything else takes the default below. Every key is checked
before any job runs (docs/troubleshooting.md).
"""


def _type(node: dict) -> str:
    if "enum" in node:
        values = node["enum"]
        shown = " | ".join(f"`{v}`" for v in values[:8])
        return shown + (f" | ... ({len(values)} values)" if len(values) > 8 else "")
    if "const" in node:
        return f"`{node['const']}`"
    if "$ref" in node:
        return node["$ref"].rsplit("/", 1)[-1]
    if "oneOf" in node:
        return " or ".join(_type(n) for n in node["oneOf"])
    kind = node.get("type", "")
    kind = " or ".join(kind) if isinstance(kind, list) else kind
    if kind == "array" and isinstance(node.get("items"), dict):
        return f"list of {_type(node['items'])}"
    bounds = []
    if "minimum" in node:
        bounds.append(f">= {node['minimum']}")
    if "exclusiveMinimum" in node:
        bounds.append(f"> {node['exclusiveMinimum']}")
    if "maximum" in node:
        bounds.append(f"<= {node['maximum']}")
    return kind + (f" ({', '.join(bounds)})" if bounds else "")


def _default(node: dict) -> str:
    if "default" not in node:
        return "required"
    value = node["default"]
    if isinstance(value, dict) and not value:
        return ""
    return f"`{json.dumps(value)}`"


def _cell(text: str) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text.replace("<", "&lt;").replace(">", "&gt;")


def _rows(node: dict, prefix: str):
    for name, sub in node.get("properties", {}).items():
        key = f"{prefix}{name}"
        yield key, sub
        if sub.get("type") == "object" and "properties" in sub:
            yield from _rows(sub, f"{key}.")
        items = sub.get("items")
        if isinstance(items, dict) and "properties" in items:
            yield from _rows(items, f"{key}[].")


def render(schema: dict) -> str:
    """The markdown page: one section per top-level key, a row per nested key."""
    out = [HEADER]
    for name, block in schema.get("properties", {}).items():
        out.append(f"\n## `{name}`\n\n{_cell(block.get('description', ''))}\n")
        rows = list(_rows(block, f"{name}.")) or [(name, block)]
        if block.get("items", {}).get("properties"):
            rows = list(_rows(block["items"], f"{name}[]."))
        out.append("| key | type | default | description |\n|---|---|---|---|")
        for key, node in rows:
            out.append(
                f"| `{key}` | {_cell(_type(node))} | {_cell(_default(node))} "
                f"| {_cell(node.get('description', ''))} |"
            )
    return "\n".join(out) + "\n"


def main(argv=None) -> None:
    repo = Path(__file__).resolve().parents[4]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schema", default=repo / "config" / "schema.yaml", type=Path)
    parser.add_argument("--output", default=repo / "config" / "README.md", type=Path)
    args = parser.parse_args(argv)
    args.output.write_text(render(yaml.safe_load(args.schema.read_text())))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
