"""``astro recipe NAME [--explain]``: a recipe's resolved settings as YAML a person can read.

Each section is a mapping of its fields with every default filled in: short values on one line
(flow style), long ones (a phrase bank) as block YAML, one item per line. With ``explain`` each
field is preceded by its help text as comment lines wrapped to the width, and fields the recipe
sets itself are marked, so the output shows what the recipe chose and what it left at the
default. The text is valid YAML and loads back to the resolved settings.
"""

from __future__ import annotations

import dataclasses
import json
import textwrap

import yaml

from astro_pipeline.config import to_dict
from astro_pipeline.recipe import SECTIONS, Recipe

FLOW_MAX = 80  # longer values are written as block YAML


def _field(name: str, value, width: int) -> list[str]:
    flow = json.dumps(value, ensure_ascii=False)  # JSON is YAML flow style
    if len(flow) <= FLOW_MAX:
        return [f"  {name}: {flow}"]
    block = yaml.safe_dump({name: value}, default_flow_style=False, allow_unicode=True, sort_keys=False,
                           width=max(40, width - 4))
    return ["  " + line for line in block.rstrip().splitlines()]


def recipe_text(recipe: Recipe, explain: bool = False, width: int = 100) -> str:
    lines = [f"# recipe {recipe.name} ({recipe.source})", f"name: {recipe.name}"]
    if explain:
        lines.insert(1, "# each field: its help text, then `key: value`; (set) marks values the recipe sets itself")
    for section in SECTIONS:
        settings = recipe.section(section)
        set_here = set((recipe.raw.get(section) or {}).keys())
        lines.append("")
        doc = (type(settings).__doc__ or "").strip().splitlines()
        if explain and doc and not doc[0].startswith(type(settings).__name__ + "("):
            lines.append(f"# {doc[0]}")
        lines.append(f"{section}:")
        for f in dataclasses.fields(settings):
            value = to_dict(getattr(settings, f.name))
            if explain:
                help_text = f.metadata.get("help", "")
                mark = " (set)" if f.name in set_here else ""
                for line in textwrap.wrap(help_text + mark, width=max(30, width - 4)):
                    lines.append(f"  # {line}")
            lines += _field(f.name, value, width)
    return "\n".join(lines) + "\n"

