"""Settings dataclasses and recipe loading: strict keys, coercion, typed sections."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from astro_pipeline.config import describe, from_dict, setting, to_dict
from astro_pipeline.recipe import SECTIONS, load_recipe


@dataclass(frozen=True)
class Inner:
    rate: float = setting(0.5, "a rate")


@dataclass(frozen=True)
class Outer:
    name: str = setting("x", "a name")
    sizes: tuple[int, ...] = setting((1, 2), "sizes")
    inner: Inner = setting(Inner(), "nested settings")
    tags: list[str] = setting([], "tags")


def test_from_dict_coerces_nested_and_tuples():
    got = from_dict(Outer, {"sizes": [3, 4], "inner": {"rate": 1}, "tags": ["a"]})
    assert got.sizes == (3, 4) and got.inner.rate == 1.0 and isinstance(got.inner.rate, float)
    assert to_dict(got) == {"name": "x", "sizes": [3, 4], "inner": {"rate": 1.0}, "tags": ["a"]}


def test_unknown_key_names_the_place():
    with pytest.raises(ValueError, match=r"Outer\.inner: unknown setting\(s\) \['rat'\]"):
        from_dict(Outer, {"inner": {"rat": 1}})


def test_wrong_type_is_rejected():
    with pytest.raises(ValueError, match="expected str"):
        from_dict(Outer, {"name": 3})


def test_every_setting_needs_help():
    with pytest.raises(ValueError):
        setting(1, "")
    assert describe(Outer)["sizes"] == "sizes"


def test_mutable_defaults_are_not_shared():
    a, b = Outer(), Outer()
    a.tags.append("x")
    assert b.tags == []


def test_unknown_section_and_missing_recipe(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nserch: {}\n")
    with pytest.raises(ValueError, match="unknown section"):
        load_recipe(bad)
    with pytest.raises(FileNotFoundError, match="available"):
        load_recipe("no_such_recipe")


def test_demo_recipe_resolves_every_section():
    recipe = load_recipe("demo")
    resolved = recipe.resolved()
    assert resolved["name"] == "demo"
    assert set(SECTIONS) <= set(resolved)
    # every field of every section has a help text
    for name in SECTIONS:
        cls = type(recipe.section(name))
        assert all(describe(cls).values()), name


@pytest.mark.parametrize("name", ["demo", "llama31_8b", "llama31_70b"])
def test_shipped_recipes_load_and_resolve(name):
    recipe = load_recipe(name)
    assert recipe.name == name and recipe.resolved()["datasets"]["benchmarks"]
