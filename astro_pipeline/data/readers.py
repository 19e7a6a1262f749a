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
* A file source must be a regular file no larger than ``max_bytes`` (the recipe's
  ``problems.max_source_bytes``): a registered path later swapped for a FIFO would block forever
  and one swapped for /dev/zero would be read without bound, so both are refused naming the file,
  and the read itself stops one byte past the cap whatever the size claimed.
* CSV: every value stays a string (so "025" keeps its zeros); an empty cell is an absent value.
  A row with more or fewer cells than the header is an unparsable row. Quotes are read strictly:
  an unbalanced quote would otherwise swallow the lines after it into one field (problem a
  taking the text of row b and row b's answer, row b vanishing). A record that is not valid CSV
  costs its first line only: that line is quarantined and reading starts again on the next one,
  so every later row still loads (a quoted field may legitimately span lines; when it is valid
  CSV it is kept whole).
* JSON: a list of rows; or an object holding exactly one list of rows ({"data": [...]}) unless the
  object is itself a row (it has the problem field), as a one-problem file with a "tags" list is.
* Hugging Face: ``ClassLabel`` columns are turned back into their label names.
* S3 endpoints: files are opened with plain ``fsspec.open``; botocore (under s3fs) reads the
  standard ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_S3`` variables, so MinIO, moto or another
  S3-compatible store is reached without any option here (the same holds for the artifact store).
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
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
        """The row as text for the quarantine: the original text, else the value as JSON.

        A lone surrogate (from a "\\ud800" escape) cannot be stored as UTF-8; it is kept visible
        as its escape.
        """
        text = self.text if self.text is not None else json.dumps(self.value, ensure_ascii=False, default=str)
        return text.encode("utf-8", "backslashreplace").decode("utf-8")


def iter_raw_rows(source: DatasetSource, synthetic_settings: Any = None, max_bytes: int | None = None) -> Iterator[RawRow]:
    """All rows of ``source`` in source order (a file source is refused when larger than ``max_bytes``)."""
    if source.kind == "file":
        return _iter_file(source, max_bytes)
    if source.kind == "hf":
        return _iter_hf(source)
    if source.kind == "synthetic":
        return _iter_synthetic(source, synthetic_settings)
    raise DataSourceError(f"dataset {source.name!r}: unknown source kind {source.kind!r}")


# files ----------------------------------------------------------------------------------------
def read_source_bytes(location: str, max_bytes: int | None = None) -> bytes:
    """The whole file, checked first: it must exist, be a regular file and hold at most ``max_bytes``."""
    try:
        fs, path = fsspec.core.url_to_fs(location)
        info = fs.info(path)
    except FileNotFoundError as exc:
        raise DataSourceError(f"problem file not found: {location}") from exc
    except Exception as exc:  # permissions, network, credentials: name the file, keep the cause
        raise DataSourceError(f"cannot read problem file {location}: {type(exc).__name__}: {exc}") from exc
    if info.get("type") == "directory":
        raise DataSourceError(f"problem file is a directory: {location}")
    protocols = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    # locally, stat says what the name really is (through symlinks): opening a FIFO blocks, a device never ends
    if "file" in protocols and not stat.S_ISREG(os.stat(path).st_mode):
        raise DataSourceError(f"problem file {location} is not a regular file (a FIFO, device or socket); "
                              "give a path to a file")
    size = info.get("size")
    if max_bytes is not None and size is not None and size > max_bytes:
        raise DataSourceError(_too_large(location, f"{size} bytes", max_bytes))
    try:
        with fs.open(path, "rb") as fh:
            data = fh.read(max_bytes + 1) if max_bytes is not None else fh.read()
    except Exception as exc:
        raise DataSourceError(f"cannot read problem file {location}: {type(exc).__name__}: {exc}") from exc
    if max_bytes is not None and len(data) > max_bytes:  # it grew, or its size was not what it said
        raise DataSourceError(_too_large(location, f"over {max_bytes} bytes", max_bytes))
    return data


def _too_large(location: str, size: str, max_bytes: int) -> str:
    return (f"problem file {location} is {size}, more than problems.max_source_bytes={max_bytes}; "
            "split it or raise the setting")


def _iter_file(source: DatasetSource, max_bytes: int | None = None) -> Iterator[RawRow]:
    fmt = source.file_format()
    data = read_source_bytes(source.location, max_bytes)
    if fmt == "jsonl":
        return _iter_jsonl(data)
    if fmt == "json":
        return _iter_json(data, source.location, source.problem_field)
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


def _iter_json(data: bytes, location: str, problem_field: str = "problem") -> Iterator[RawRow]:
    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataSourceError(f"cannot parse JSON file {location}: {exc}") from exc
    rows = _json_rows(doc, location, problem_field)
    return (RawRow(i, value=row) for i, row in enumerate(rows, start=1))


def _json_rows(doc: Any, location: str, problem_field: str = "problem") -> list[Any]:
    """A list of rows; an object that is itself a row; or an object holding exactly one list of rows."""
    if isinstance(doc, list):
        return doc
    if isinstance(doc, dict):
        if problem_field in doc:  # one problem, whatever lists it carries ("tags": [...])
            return [doc]
        lists = [key for key, value in doc.items() if isinstance(value, list)]
        if len(lists) == 1:
            return doc[lists[0]]
        raise DataSourceError(
            f"JSON file {location}: expected a list of rows, one row (with a {problem_field!r} field) or an "
            f"object with exactly one list; found list-valued keys {lists} among {sorted(doc)[:20]}"
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
    reader = csv.reader(physical, strict=True)
    try:
        header = next(reader)
    except csv.Error as exc:
        raise DataSourceError(f"CSV file {location}: cannot parse the header: {exc}") from exc
    if len(set(header)) != len(header) or any(not h for h in header):
        raise DataSourceError(f"CSV file {location}: header has empty or repeated column names: {header}")
    return _csv_rows(physical, header, first=reader.line_num)


class _Lines:
    """The physical lines from a position on, for csv.reader; the position can be moved back."""

    def __init__(self, lines: list[str], pos: int) -> None:
        self.lines, self.pos = lines, pos  # pos: 0-based index of the next line handed out

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        if self.pos >= len(self.lines):
            raise StopIteration
        self.pos += 1
        return self.lines[self.pos - 1]


def _csv_rows(physical: list[str], header: list[str], first: int) -> Iterator[RawRow]:
    """Records after the header's ``first`` lines; see the module docstring for malformed ones."""
    lines = _Lines(physical, first)
    reader = csv.reader(lines, strict=True)
    while True:
        start = lines.pos + 1  # 1-based number of the line the next record begins on
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield RawRow(start, error=f"invalid CSV (an unbalanced quote?) in the record starting here: {exc}",
                         text=physical[start - 1].rstrip("\r\n"))
            lines.pos = start  # go on from the next line, with a parser that starts clean
            reader = csv.reader(lines, strict=True)
            continue
        text = "".join(physical[start - 1 : lines.pos]).rstrip("\r\n")
        if not cells:  # csv yields [] for an empty line: not a row, like blank JSON Lines
            yield RawRow(start, text=text, blank=True)
        elif len(cells) != len(header):
            yield RawRow(start, error=f"{len(cells)} cells but the header has {len(header)}", text=text)
        else:
            yield RawRow(start, value={h: (c if c != "" else None) for h, c in zip(header, cells)}, text=text)


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
