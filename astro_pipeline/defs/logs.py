"""The console logger of ``astro run``: one short line per message, for a person at a terminal.

Dagster's default console logger prints every framework event (step start, resource init, output
handled, ...) at DEBUG with the job name, run id and pid on each line: 632 lines for the demo. This
one prints ``HH:MM:SS step[partition]: message`` for the assets' own messages at INFO and above,
and Dagster's framework events only when they are warnings or errors, or with ``events: true``
(``astro run --verbose`` sets that and DEBUG). Runs started from the UI keep Dagster's loggers
(this one is used only when a run's config names it).
"""

from __future__ import annotations

import logging
import sys
import time

import dagster as dg

PARTITION_TAG = "dagster/partition"


class PeopleFormatter(logging.Formatter):
    def __init__(self, partitioned_steps: frozenset[str] = frozenset()) -> None:
        super().__init__()
        self.partitioned_steps = partitioned_steps  # steps of partitioned assets: their lines name the partition

    def format(self, record: logging.LogRecord) -> str:
        meta = getattr(record, "dagster_meta", None) or {}
        event = meta.get("dagster_event")
        where = meta.get("step_key") or meta.get("job_name") or "run"
        partition = (meta.get("job_tags") or {}).get(PARTITION_TAG)
        if partition and meta.get("step_key") in self.partitioned_steps:
            where += f"[{partition}]"
        text = meta.get("orig_message", record.getMessage())
        if event is not None:
            text = f"{event.event_type_value}: {text}"
            error = getattr(getattr(event, "event_specific_data", None), "error", None)
            if error is not None:
                text += f": {_first_line(error)}"
        level = "" if record.levelno == logging.INFO else f"{record.levelname} "
        return f"{time.strftime('%H:%M:%S', time.localtime(record.created))} {level}{where}: {text}"


def _first_line(error) -> str:
    """The error raised by our code, not Dagster's wrapper around it; its first line."""
    while error.cause is not None and (error.cls_name or "").startswith("Dagster"):
        error = error.cause
    lines = (error.message or "").strip().splitlines()
    return lines[0][:300] if lines else error.cls_name or "error"


class FrameworkEventFilter(logging.Filter):
    """Drops Dagster's own events below WARNING; keeps everything the assets log."""

    def filter(self, record: logging.LogRecord) -> bool:
        meta = getattr(record, "dagster_meta", None) or {}
        return meta.get("dagster_event") is None or record.levelno >= logging.WARNING


@dg.logger(
    config_schema={
        "log_level": dg.Field(str, default_value="INFO", description="lowest level printed"),
        "events": dg.Field(bool, default_value=False, description="also print Dagster's framework events"),
        "partitioned_steps": dg.Field([str], default_value=[], description="steps whose lines name the partition"),
    },
    description="Short lines for a terminal: time, step and partition, message.",
)
def console_logger(init_context) -> logging.Logger:
    config = init_context.logger_config
    logger = logging.Logger("astro.run", level=config["log_level"].upper())
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(PeopleFormatter(frozenset(config["partitioned_steps"])))
    if not config["events"]:
        handler.addFilter(FrameworkEventFilter())
    logger.addHandler(handler)
    return logger


def logger_run_config(verbose: bool, partitioned_steps: list[str] = ()) -> dict:
    """The run config that routes a run's log through ``console_logger``."""
    return {"loggers": {"console": {"config": {"log_level": "DEBUG" if verbose else "INFO", "events": verbose,
                                               "partitioned_steps": list(partitioned_steps)}}}}
