"""The one Dagster resource: which recipe is in force and where artifacts live."""

from __future__ import annotations

import os

from dagster import ConfigurableResource
from pydantic import Field

from astro_pipeline.recipe import Recipe, load_recipe
from astro_pipeline.storage import ArtifactStore, astro_home
from astro_pipeline.warehouse import Warehouse


class AstroResource(ConfigurableResource):
    """Recipe name and artifact root; assets ask it for the recipe, the store and the warehouse."""

    recipe_name: str = Field(
        default_factory=lambda: os.environ.get("ASTRO_RECIPE", "demo"),
        description="Recipe name (recipes/NAME.yaml) or path; defaults to $ASTRO_RECIPE or 'demo'.",
    )
    home: str = Field(
        default_factory=astro_home,
        description="Artifact root, a folder or s3:// URI; defaults to $ASTRO_HOME or ./.astro.",
    )

    def recipe(self) -> Recipe:
        return load_recipe(self.recipe_name)

    def store(self) -> ArtifactStore:
        return ArtifactStore(self.home)

    def warehouse(self) -> Warehouse:
        return Warehouse(self.store())
