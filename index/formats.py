"""Row writers for the export formats, and atomic file output.

Every format carries the same rows and columns, in the same order:
* jsonl: one JSON object per line, UTF-8, Chinese unescaped; lists and dicts as JSON.
* csv: a header row, then one row per record; `categories` and `evidence` are JSON strings,
  null is an empty cell.
* parquet: `categories` is list<string>, `evidence` a JSON string (its keys are category
  ids, which vary: a struct column would change schema with the taxonomy), `paragraph` int32,
  everything else string; written in row groups of ROWS_PER_GROUP.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, BinaryIO, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

FORMATS = ("jsonl", "csv", "parquet")
JSON_COLUMNS = frozenset({"categories", "evidence"})
ROWS_PER_GROUP = 10_000          # bounds the rows buffered in memory for parquet

Row = dict[str, Any]


class RowWriter(Protocol):
    """Writes rows (dicts in column order) to a binary stream it does not own."""

    def write(self, row: Row) -> None: ...

    def close(self) -> None: ...

    def abort(self) -> None: ...


class JsonlWriter:
    """One JSON object per line."""

    def __init__(self, stream: BinaryIO, columns: Sequence[str]) -> None:
        self._stream = stream

    def write(self, row: Row) -> None:
        self._stream.write(json.dumps(row, ensure_ascii=False).encode("utf-8") + b"\n")

    def close(self) -> None:
        self._stream.flush()

    def abort(self) -> None:
        """Nothing is buffered: the atomic file discards what was written."""


class CsvWriter:
    """RFC 4180 csv with a header; JSON strings for list/dict columns."""

    def __init__(self, stream: BinaryIO, columns: Sequence[str]) -> None:
        self._text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
        self._csv = csv.writer(self._text)
        self._csv.writerow(columns)

    def write(self, row: Row) -> None:
        self._csv.writerow([_csv_cell(name, value) for name, value in row.items()])

    def close(self) -> None:
        self._text.flush()
        self._text.detach()      # leave the caller's stream open (it may be stdout)

    def abort(self) -> None:
        with contextlib.suppress(ValueError, OSError):
            self._text.detach()


def _csv_cell(name: str, value: Any) -> Any:
    if name in JSON_COLUMNS:
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else value


class ParquetWriter:
    """Buffered row groups; the stream need not be seekable (stdout works)."""

    def __init__(self, stream: BinaryIO, columns: Sequence[str]) -> None:
        self._schema = pa.schema([(name, _arrow_type(name)) for name in columns])
        self._writer = pq.ParquetWriter(stream, self._schema, compression="zstd")
        self._rows: list[Row] = []

    def write(self, row: Row) -> None:
        self._rows.append({**row, "evidence": json.dumps(row["evidence"], ensure_ascii=False)})
        if len(self._rows) >= ROWS_PER_GROUP:
            self._flush()

    def _flush(self) -> None:
        if self._rows:
            self._writer.write_table(pa.Table.from_pylist(self._rows, schema=self._schema))
            self._rows = []

    def close(self) -> None:
        self._flush()
        self._writer.close()

    def abort(self) -> None:
        """Close without the buffered rows (else pyarrow complains when it is collected)."""
        self._rows = []
        with contextlib.suppress(Exception):
            self._writer.close()


def _arrow_type(name: str) -> pa.DataType:
    if name == "categories":
        return pa.list_(pa.string())
    return pa.int32() if name == "paragraph" else pa.string()


def open_writer(fmt: str, stream: BinaryIO, columns: Sequence[str]) -> RowWriter:
    """A writer of `fmt` (one of FORMATS) over `stream`."""
    writers = {"jsonl": JsonlWriter, "csv": CsvWriter, "parquet": ParquetWriter}
    return writers[fmt](stream, columns)


@contextlib.contextmanager
def writing(fmt: str, stream: BinaryIO, columns: Sequence[str]) -> Iterator[RowWriter]:
    """open_writer as a context: closed on success, aborted on any exception."""
    writer = open_writer(fmt, stream, columns)
    try:
        yield writer
    except BaseException:
        writer.abort()
        raise
    writer.close()


@contextlib.contextmanager
def atomic_file(path: Path) -> Iterator[BinaryIO]:
    """Write `path` through a temp file in the same folder, renamed into place on success.

    An exception (or Ctrl-C) leaves `path` as it was and removes the temp file; a kill -9
    leaves at most a hidden `.name.*.tmp` beside it, never a half `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temp, 0o644)    # mkstemp makes 0600; an export is meant to be shared
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
        raise


def write_stream(rows: Iterable[Row], fmt: str, columns: Sequence[str],
                 stream: BinaryIO) -> None:
    """Write every row to `stream` in `fmt`."""
    with writing(fmt, stream, columns) as writer:
        for row in rows:
            writer.write(row)


def write_split_files(rows: Iterable[Row], fmt: str, columns: Sequence[str], folder: Path,
                      order: Sequence[str]) -> tuple[Path, ...]:
    """One file per `split` value that has rows, named by split_file_name; all of them are
    renamed into place only if every one succeeds. Returns them in `order`."""
    writers: dict[str, RowWriter] = {}
    paths: dict[str, Path] = {}
    with contextlib.ExitStack() as stack:
        for row in rows:
            split = row["split"]
            if split not in writers:
                paths[split] = folder / split_file_name(split, fmt)
                stream = stack.enter_context(atomic_file(paths[split]))
                writers[split] = stack.enter_context(writing(fmt, stream, columns))
            writers[split].write(row)
    return tuple(paths[s] for s in order if s in paths)


def split_file_name(split: str, fmt: str) -> str:
    """Where a split lives inside the dataset folder (Hugging Face naming)."""
    if fmt == "parquet":
        return f"data/{split}-00000-of-00001.parquet"
    return f"{split}.{fmt}"
