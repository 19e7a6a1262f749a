"""Tag names shared by assets, jobs, the runner and the schedule."""

DATASETS_TAG = "astro/datasets"  # which partitions an asset runs for: train, benchmarks, benchmarks_x_stages
STAGE_TAG = "astro/model_stage"  # the model stage a model asset builds
RECIPE_TAG = "astro/recipe"  # on every run: the recipe it ran under
INVOCATION_TAG = "astro/invocation"  # on every run of one `astro run`: the same id
