"""Reading raw rows out of a source: files (local or any fsspec URI, e.g. s3://), the Hugging Face
hub, or the synthetic generator. No checking of fields happens here (that is ``normalize``).

Design choices:

* Every reader yields ``RawRow``s: the row's position (``line``), the parsed value (or the parse
  error), and a way to get the raw text back for the quarantine. A row that cannot be parsed is
  yielded with its error rather than raised, so one bad row costs one quarantine row, not the file.
* A source that cannot be read *as a whole* (missing file, invalid JSON document, corrupt Parquet,
  non-UTF-8 CSV, hub error) raises ``DataSourceError`` naming the file or dataset id.
* ``line`` means: the physical line number (1-based) in JSON Lines and CSV files (for CSV the
  header is line 1, and a record spanning several lines reports its first line); the 1-based
  record index in JSON, Parquet, Hugging Face and synthetic sources.
* JSON Lines: blank (whitespace-only) lines are not rows. They are reported with ``blank=True`` so
  the loader can count them, and are neither loaded nor quarantined. Lines are split on "\\n" only
  (a trailing "\\r" is dropped): ``str.splitlines`` would also split on U+2028 and friends, which may
  appear unescaped inside JSON strings.
* CSV: every value stays a string (so "025" keeps its zeros); an empty cell is an absent value.
  A row with more or fewer cells than the header is an unparsable row.
* Hugging Face: ``ClassLabel`` columns are turned back into their label names.
* S3 endpoints: files are opened with plain ``fsspec.open``; botocore (under s3fs) reads the
  standard ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3`` variables, so MinIO, moto or another
  S3-compatible store is reached without any option here (the same holds for the artifact store).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import fsspec

from astro_pipeline.data.sources import DatasetSource


class DataSourceError(RuntimeError):
    """A dataset's source cannot be read at all (missing, unreadable or not parseable as a whole)."""


@dataclass
class RawRow:
    line: int
    value: Any = None  # the parsed row (normally a dict); None when ``error`` is set
    error: str | None = None  # why the row could not be parsed
    text: str | None = None  # the raw text, when the format has one (JSON Lines, CSV)
    blank: bool = False  # a blank JSON Lines line: not a row

    def raw(self) -> str:
        """The row as text for the quarantine: the original text, else the value as JSON."""
        if self.text is not None:
            return self.text
        return json.dumps(self.value, ensure_ascii=False, default=str)


def iter_raw_rows(source: DatasetSource, synthetic_settings: Any = None) -> Iterator[RawRow]:
    """All rows of ``source`` in source order."""
    if source.kind == "file":
        return _iter_file(source)
    if source.kind == "hf":
        return _iter_hf(source)
    if source.kind == "synthetic":
        return _iter_synthetic(source, synthetic_settings)
    raise DataSourceError(f"dataset {source.name!r}: unknown source kind {source.kind!r}")


# files ----------------------------------------------------------------------------------------
def read_source_bytes(location: str) -> bytes:
    try:
        with fsspec.open(location, "rb") as fh:
            return fh.read()
    except FileNotFoundError as exc:
        raise DataSourceError(f"problem file not found: {location}") from exc
    except IsADirectoryError as exc:
        raise DataSourceError(f"problem file is a directory: {location}") from exc
    except Exception as exc:  # permissions, network, credentials: name the file, keep the cause
        raise DataSourceError(f"cannot read problem file {location}: {type(exc).__name__}: {exc}") from exc


def _iter_file(source: DatasetSource) -> Iterator[RawRow]:
    fmt = source.file_format()
    data = read_source_bytes(source.location)
    if fmt == "jsonl":
        return _iter_jsonl(data)
    if fmt == "json":
        return _iter_json(data, source.location)
    if fmt == "parquet":
        return _iter_parquet(data, source.location)
    if fmt == "csv":
        return _iter_csv(data, source.location)
    raise DataSourceError(f"unsupported format {fmt!r} for {source.location}")


def _iter_jsonl(data: bytes) -> Iterator[RawRow]:
    if data.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark is not part of line 1
        data = data[3:]
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":  # the final newline ends the last line; it does not open one
        lines.pop()
    for number, raw_bytes in enumerate(lines, start=1):
        if raw_bytes.endswith(b"\r"):
            raw_bytes = raw_bytes[:-1]
        try:
            text = raw_bytes.decode("utf-8")
        except UnicodeDecodeError as exc:
            # keep every byte visible in the quarantine (invalid ones as \xNN escapes)
            yield RawRow(number, error=f"not UTF-8: {exc}", text=raw_bytes.decode("utf-8", "backslashreplace"))
            continue
        if not text.strip():
            yield RawRow(number, text=text, blank=True)
            continue
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            yield RawRow(number, error=f"invalid JSON: {exc}", text=text)
            continue
        yield RawRow(number, value=value, text=text)


def _iter_json(data: bytes, location: str) -> Iterator[RawRow]:
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataSourceError(f"cannot parse JSON file {location}: {exc}") from exc
    rows = _json_rows(doc, location)
    return (RawRow(i, value=row) for i, row in enumerate(rows, start=1))


def _json_rows(doc: Any, location: str) -> list[Any]:
    """A list of rows, or an object holding exactly one list (e.g. {"data": [...], "version": 2})."""
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        lists = [key for key, value in doc.items() if isinstance(value, list)]
        if len(lists) == 1:
            return doc[lists[0]]
        raise DataSourceError(
            f"JSON file {location}: expected a list of rows or an object with exactly one list; "
            f"found list-valued keys {lists} among {sorted(doc)[:20]}"
        )
    raise DataSourceError(f"JSON file {location}: expected a list of rows, got {type(doc).__name__}")


def _iter_parquet(data: bytes, location: str) -> Iterator[RawRow]:
    import polars as pl

    try:
        df = pl.read_parquet(io.BytesIO(data))
    except Exception as exc:  # polars raises ComputeError/OSError variants for bad files
        raise DataSourceError(f"cannot read Parquet file {location}: {exc}") from exc
    return (RawRow(i, value=row) for i, row in enumerate(df.iter_rows(named=True), start=1))


def _iter_csv(data: bytes, location: str) -> Iterator[RawRow]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataSourceError(f"CSV file {location} is not UTF-8: {exc}") from exc
    # physical lines exactly as the csv module sees them, so a row's raw text can be cut back out
    physical = io.StringIO(text, newline="").readlines()
    if not physical:
        raise DataSourceError(f"CSV file {location} is empty (no header line)")
    reader = csv.reader(physical)
    try:
        header = next(reader)
    except csv.Error as exc:
        raise DataSourceError(f"CSV file {location}: cannot parse the header: {exc}") from exc
    if len(set(header)) != len(header) or any(not h for h in header):
        raise DataSourceError(f"CSV file {location}: header has empty or repeated column names: {header}")
    return _csv_rows(reader, physical, header)


def _csv_rows(reader: Any, physical: list[str], header: list[str]) -> Iterator[RawRow]:
    start = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            end = reader.line_num
            yield RawRow(start, error=f"invalid CSV: {exc}", text="".join(physical[start - 1 : end]))
            start = end + 1
            continue
        end = reader.line_num
        text = "".join(physical[start - 1 : end]).rstrip("\r\n")
        line, start = start, end + 1
        if not cells:  # csv yields [] for an empty line: not a row, like blank JSON Lines
            yield RawRow(line, text=text, blank=True)
        elif len(cells) != len(header):
            yield RawRow(line, error=f"{len(cells)} cells but the header has {len(header)}", text=text)
        else:
            yield RawRow(line, value={h: (c if c != "" else None) for h, c in zip(header, cells)}, text=text)


# Hugging Face ------------------------------------------------------------------------------------
def _iter_hf(source: DatasetSource) -> Iterator[RawRow]:
    # imported here: `datasets` is slow to import and only this route needs it; looked up as
    # datasets.load_dataset at call time so tests can monkeypatch it
    import datasets

    try:
        ds = datasets.load_dataset(source.location, source.config, split=source.split)
    except Exception as exc:
        where = source.location + (f" (config {source.config!r})" if source.config else "")
        raise DataSourceError(
            f"cannot load Hugging Face dataset {where}, split {source.split!r}: {type(exc).__name__}: {exc}"
        ) from exc
    return _hf_rows(ds)


def _hf_rows(ds: Any) -> Iterator[RawRow]:
    # ClassLabel columns hold integer codes; rows carry the label names instead, because a code
    # means nothing outside the dataset (a MATH copy storing "Level 1".."Level ?" as 0..5 would
    # otherwise read as level 0..5)
    features = getattr(ds, "features", None) or {}
    labels = {name: feat for name, feat in features.items() if type(feat).__name__ == "ClassLabel"}
    for i, row in enumerate(ds, start=1):
        row = dict(row)
        for name, feat in labels.items():
            code = row.get(name)
            if isinstance(code, int) and 0 <= code < feat.num_classes:
                row[name] = feat.int2str(code)
        yield RawRow(i, value=row)


# synthetic -----------------------------------------------------------------------------------------
def _iter_synthetic(source: DatasetSource, synthetic_settings: Any) -> Iterator[RawRow]:
    from astro_pipeline.data import synthetic

    if synthetic_settings is None:
        synthetic_settings = synthetic.SyntheticSettings()
    rows = synthetic.generate_rows(source.split, synthetic_settings)
    return (RawRow(i, value=row) for i, row in enumerate(rows, start=1))
