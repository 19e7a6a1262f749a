"""The Dagster code location: every asset, resource, check, sensor and schedule of the pipeline."""

from __future__ import annotations

import dagster as dg

from astro_pipeline.defs.assets.problems import problems
from astro_pipeline.defs.resources import AstroResource


def build_definitions() -> dg.Definitions:
    return dg.Definitions(
        assets=[problems],
        resources={"astro": AstroResource()},
    )


defs = build_definitions()
