"""A CSV upload -> a 2-D or 3-D point cloud, with a sentence for every way a file can be unusable.

The file's shape is checked on its raw bytes before anything parses it: a row of 2 or 3 numbers (or of their
column names) is short, so a longer line is refused in milliseconds and without growing the server's memory,
however many fields it packs; the parser then reads at most max_rows + 2 rows. Column names and cells that
sentences quote are shown as plain labels (core/text.py).
"""

from __future__ import annotations

import csv
import io
import re

import pandas as pd
import torch

from core.data.toy import MIN_POINTS
from core.errors import BadInputError
from core.limits import max_csv_bytes, max_points
from core.text import plain_label

MAX_LINE_BYTES = 256  # 3 numbers at full float64 precision take about 75; a header of 3 names, what fits
# A line start, then more characters than a line may hold: anchored on line starts, so each line is read at
# most once (a plain [^\n]{257} would be retried at every byte, quadratic on a file of long lines).
_LONG_LINE = re.compile(rb"(?:^|[\r\n])[^\r\n]{%d}" % (MAX_LINE_BYTES + 1))  # \r alone ends a line too (old Macs)
_MISSING = {"", "nan", "na", "n/a", "null", "none", "-"}


def _sniff_delimiter(sample: str) -> str:
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t ").delimiter
    except csv.Error:
        return ","


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


FLOAT32_MAX = float(torch.finfo(torch.float32).max)


def _check_shape(raw: bytes) -> None:
    """Refuse a file with a line too long for 2 or 3 columns, from its bytes alone (one regex scan, in C)."""
    found = _LONG_LINE.search(raw)
    if found is not None:
        start = found.start() + (raw[found.start() : found.start() + 1] in (b"\n", b"\r"))
        number = len(re.findall(rb"\r\n|\r|\n", raw[:start])) + 1
        end = re.compile(rb"[\r\n]").search(raw, start)
        length = (len(raw) if end is None else end.start()) - start
        raise BadInputError(
            f"Line {number} is {length:,} characters long; a row of 2 or 3 numbers (x, y[, z]) or their column "
            f"names fits in {MAX_LINE_BYTES}. Is this the right file?"
        )


def points_from_csv(raw: bytes, max_rows: int | None = None) -> tuple[torch.Tensor, list[str]]:
    """Parse a CSV with 2 or 3 numeric columns (an optional header row) -> (points [N, D] float64, names).

    Delimiters , ; tab and space are recognised. Raises BadInputError naming the first bad row and column
    for text in a number column, an empty or NaN cell, or an infinite value; and for the wrong number of
    columns, too few or too many rows, a file too big, or a file that is not text.
    """
    max_rows = max_points() if max_rows is None else max_rows
    if len(raw) > (limit := max_csv_bytes()):
        raise BadInputError(f"The file is {len(raw) / 2**20:.1f} MB; the limit is {limit / 2**20:g} MB.")
    _check_shape(raw)  # before decoding or parsing: the bytes alone tell a file of the wrong shape
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadInputError("The file is not a text CSV (it is not UTF-8 text).") from None
    if "\x00" in text:
        raise BadInputError("The file is not a text CSV (it holds binary data).")
    first_char = re.search(r"\S", text)  # (text.strip() would copy the whole file)
    if first_char is None:
        raise BadInputError("The file is empty.")
    sep = _sniff_delimiter(text[:4096])
    end = re.compile(r"[\r\n]").search(text, first_char.start())  # the first line that is not blank
    head = text[first_char.start() : None if end is None else end.start()].rstrip()
    fields = len(head.split() if sep == " " else next(csv.reader([head.rstrip(sep)], delimiter=sep)))
    if fields > 3:  # the parser then refuses any later row longer than this one: at most 4 cells a row
        raise BadInputError(f"The file has {fields} columns; it needs 2 or 3 numeric columns (x, y[, z]).")
    try:
        table = pd.read_csv(
            io.StringIO(text),
            sep=r"\s+" if sep == " " else sep,
            header=None,
            dtype=str,
            keep_default_na=False,
            skip_blank_lines=True,
            nrows=max_rows + 2,
            engine="python" if sep == " " else "c",
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise BadInputError(f"The file is not a well-formed CSV: {str(err).strip().splitlines()[-1]}") from None
    table = table.apply(lambda col: col.str.strip())
    table = table.loc[:, ~(table == "").all()]  # an empty trailing column from a trailing delimiter
    first = table.iloc[0].tolist() if len(table) else []
    has_header = any(not _is_number(c) and c.lower() not in _MISSING for c in first)
    names = [plain_label(c, 24) if c else f"column {i + 1}" for i, c in enumerate(first)] if has_header else None
    body = table.iloc[1:] if has_header else table
    if table.shape[1] not in (2, 3):
        raise BadInputError(f"The file has {table.shape[1]} column(s); it needs 2 or 3 numeric columns (x, y[, z]).")
    names = names or ["x", "y", "z"][: table.shape[1]]
    if len(body) > max_rows:
        raise BadInputError(f"The file has more than {max_rows:,} rows; use at most {max_rows:,} points.")
    if len(body) < MIN_POINTS:
        raise BadInputError(f"The file has {len(body)} data rows; it needs at least {MIN_POINTS}.")
    offset = 2 if has_header else 1  # file line number of body row 0 (1-based)
    for j, name in enumerate(names):
        col = body.iloc[:, j]
        missing = col.str.lower().isin(_MISSING)
        if missing.any():
            row = int(missing.to_numpy().argmax())
            raise BadInputError(f"Line {row + offset}: column '{name}' is empty or NaN; every cell needs a number.")
        values = pd.to_numeric(col, errors="coerce")
        if values.isna().any():
            row = int(values.isna().to_numpy().argmax())
            cell = plain_label(col.iloc[row], 24)
            raise BadInputError(f"Line {row + offset}: column '{name}' holds '{cell}', which is not a number.")
    points = torch.as_tensor(body.astype(float).to_numpy(), dtype=torch.float64)
    if not bool(points.isfinite().all()):
        raise BadInputError("The file holds an infinite value; every cell needs a finite number.")
    too_big = points.abs() > FLOAT32_MAX  # the app works in float32: these would become infinite there
    if bool(too_big.any()):
        row, j = (int(i) for i in too_big.nonzero()[0])
        raise BadInputError(
            f"Line {row + offset}: column '{names[j]}' holds {plain_label(body.iloc[row, j], 24)}, beyond "
            f"float32's range (±{FLOAT32_MAX:.3g}); rescale the data."
        )
    return points, names
