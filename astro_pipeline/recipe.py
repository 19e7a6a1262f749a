"""Recipes: one YAML file per setup, holding every stage's settings.

Design: a recipe is a mapping of section name -> settings of one stage. Each section is parsed
by that stage's own settings dataclass (``SECTIONS`` maps names to "module:Class", imported lazily
so a stage's heavy imports are paid only when it is used). Sections missing from the YAML take
their dataclass defaults. ``load_recipe`` validates every section up front, so a typo fails at
load time with the section and key named. Recipes are looked up by name in ``recipes/`` (or the
``ASTRO_RECIPES_DIR`` folder) or given as a path.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import yaml

from astro_pipeline.config import from_dict, to_dict

T = TypeVar("T")

# section name -> "module:Class" of that stage's settings dataclass
SECTIONS: dict[str, str] = {
    "datasets": "astro_pipeline.data.settings:DatasetSettings",
    "problems": "astro_pipeline.data.settings:ProblemSettings",
    "verify": "astro_pipeline.verify.settings:VerifySettings",
    "synthetic": "astro_pipeline.data.synthetic:SyntheticSettings",
    "backend": "astro_pipeline.llm.settings:BackendSettings",
    "base_model": "astro_pipeline.train.settings:BaseModelSettings",
    "search": "astro_pipeline.search.settings:SearchSettings",
    "cloning": "astro_pipeline.cloning.settings:CloningSettings",
    "sft": "astro_pipeline.train.sft_settings:SFTSettings",
    "rl": "astro_pipeline.train.rl_settings:RLSettings",
    "evaluate": "astro_pipeline.evaluate.settings:EvalSettings",
    "operations": "astro_pipeline.operations:OperationsSettings",
}

REPO_RECIPES = Path(__file__).resolve().parent.parent / "recipes"


def recipes_dir() -> Path:
    return Path(os.environ.get("ASTRO_RECIPES_DIR", REPO_RECIPES))


@cache
def _section_class(name: str) -> type:
    module, _, cls = SECTIONS[name].partition(":")
    return getattr(importlib.import_module(module), cls)


@dataclass(frozen=True)
class Recipe:
    """A loaded recipe: its name, the raw YAML mapping, and typed access per section."""

    name: str
    raw: dict[str, Any] = field(default_factory=dict)
    source: str = ""
    _parsed: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def section(self, name: str) -> Any:
        """The typed settings of one stage (defaults where the YAML is silent)."""
        if name not in SECTIONS:
            raise KeyError(f"unknown recipe section {name!r}; known: {sorted(SECTIONS)}")
        return _parse_section(self, name)

    def resolved(self) -> dict[str, Any]:
        """Every section with defaults filled in: what is saved beside artifacts."""
        return {"name": self.name, **{n: to_dict(self.section(n)) for n in SECTIONS}}

    def fingerprint(self, *sections: str) -> str:
        """A short hash of the named sections' resolved settings (for reuse decisions)."""
        payload = {n: to_dict(self.section(n)) for n in (sections or tuple(SECTIONS))}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _parse_section(recipe: Recipe, name: str) -> Any:
    if name not in recipe._parsed:
        settings_cls = _section_class(name)
        recipe._parsed[name] = from_dict(settings_cls, recipe.raw.get(name), where=f"{recipe.name}.{name}")
    return recipe._parsed[name]


def load_recipe(name_or_path: str | os.PathLike[str]) -> Recipe:
    """Load a recipe by name (``recipes/NAME.yaml``) or path, validating every section."""
    path = Path(name_or_path)
    if not path.suffix:
        path = recipes_dir() / f"{name_or_path}.yaml"
    if not path.is_file():
        available = sorted(p.stem for p in recipes_dir().glob("*.yaml"))
        raise FileNotFoundError(f"recipe {str(name_or_path)!r} not found at {path}; available: {available}")
    raw = yaml.safe_load(path.read_text()) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"recipe {path}: expected a mapping at the top level")
    name = raw.pop("name", path.stem)
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ValueError(f"recipe {path}: unknown section(s) {unknown}; known: {sorted(SECTIONS)}")
    recipe = Recipe(name=name, raw=raw, source=str(path))
    for section in raw:
        recipe.section(section)
    return recipe
