"""The paper's reported results (ASTRO, arXiv 2507.00417), as data, for the report's comparison.

Source: DESIGN.md §2 "Reported results" (pass@1 in percent; the paper averages 16 samples per
problem). Values are kept as the strings reported, because one cell is ambiguous in the sources
("13.3 or 16.3"); ``paper_value`` gives a float where the cell is a single number. Each row names
the stage of this pipeline that plays its role (``base`` for the instruct model the paper starts
from, ``direct_*`` for the ablation arm without reflection), so the report can put ours beside it.
These are the paper's numbers for Llama-3.1-70B; a demo model is not expected to come near them.
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCE = "ASTRO (arXiv 2507.00417), as summarized in DESIGN.md §2 'Reported results': pass@1 in %, 16 samples"

# our benchmark (dataset) name -> the paper's column title
BENCHMARK_TITLES: dict[str, str] = {"math500": "MATH-500", "amc2023": "AMC 2023", "aime2024": "AIME 2024"}


@dataclass(frozen=True)
class PaperRow:
    model: str  # the paper's name for the model
    stage: str  # our stage in the same role
    values: dict[str, str]  # benchmark -> pass@1 (%) as reported


PAPER_RESULTS: tuple[PaperRow, ...] = (
    PaperRow("Llama-3.1-70B-Instruct", "base", {"math500": "65.8", "amc2023": "37.5", "aime2024": "10.0"}),
    PaperRow("Direct-SFT", "direct_sft", {"math500": "65.8", "amc2023": "45.2", "aime2024": "16.7"}),
    PaperRow("ASTRO-SFT", "sft", {"math500": "69.6", "amc2023": "51.9", "aime2024": "13.3 or 16.3"}),
    PaperRow("Direct-RL", "direct_rl", {"math500": "79.8", "amc2023": "60.5", "aime2024": "27.1"}),
    PaperRow("ASTRO-RL", "rl", {"math500": "81.8", "amc2023": "64.4", "aime2024": "30.0"}),
)

# problems in each of the paper's benchmarks (DESIGN.md §4), and samples per problem it averages
BENCHMARK_SIZES: dict[str, int] = {"math500": 500, "amc2023": 40, "aime2024": 30}
PAPER_SAMPLES = 16

# Pearson r between the number of backtracks at test time and accuracy, as reported
PAPER_BACKTRACK_CORRELATION: tuple[float, float] = (0.82, 0.85)


def paper_value(row: PaperRow, benchmark: str) -> float | None:
    """The reported number as a float, or None when absent or ambiguous."""
    text = row.values.get(benchmark)
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


# stage display order (the paper's row order; the sql/ files use the same CASE order)
STAGE_ORDER: tuple[str, ...] = tuple(row.stage for row in PAPER_RESULTS)


def stage_rank(stage: str) -> tuple[int, str]:
    """Sort key: known stages in STAGE_ORDER, then others alphabetically."""
    return (STAGE_ORDER.index(stage) if stage in STAGE_ORDER else len(STAGE_ORDER), stage)
