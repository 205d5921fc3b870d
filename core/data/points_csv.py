"""A CSV upload -> a 2-D or 3-D point cloud, with a sentence for every way a file can be unusable."""

from __future__ import annotations

import csv
import io

import pandas as pd
import torch

from core.data.toy import MAX_POINTS, MIN_POINTS
from core.errors import BadInputError

MAX_BYTES = 20 * 1024 * 1024
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


def points_from_csv(raw: bytes, max_rows: int = MAX_POINTS) -> tuple[torch.Tensor, list[str]]:
    """Parse a CSV with 2 or 3 numeric columns (an optional header row) -> (points [N, D] float64, names).

    Delimiters , ; tab and space are recognised. Raises BadInputError naming the first bad row and column
    for text in a number column, an empty or NaN cell, or an infinite value; and for the wrong number of
    columns, too few or too many rows, a file too big, or a file that is not text.
    """
    if len(raw) > MAX_BYTES:
        raise BadInputError(f"The file is {len(raw) / 2**20:.1f} MB; the limit is {MAX_BYTES // 2**20} MB.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadInputError("The file is not a text CSV (it is not UTF-8 text).") from None
    if "\x00" in text:
        raise BadInputError("The file is not a text CSV (it holds binary data).")
    if not text.strip():
        raise BadInputError("The file is empty.")
    sep = _sniff_delimiter(text[:4096])
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
    names = [c or f"column {i + 1}" for i, c in enumerate(first)] if has_header else None
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
            raise BadInputError(f"Line {row + offset}: column '{name}' holds '{col.iloc[row]}', which is not a number.")
    points = torch.as_tensor(body.astype(float).to_numpy(), dtype=torch.float64)
    if not bool(points.isfinite().all()):
        raise BadInputError("The file holds an infinite value; every cell needs a finite number.")
    too_big = points.abs() > FLOAT32_MAX  # the app works in float32: these would become infinite there
    if bool(too_big.any()):
        row, j = (int(i) for i in too_big.nonzero()[0])
        raise BadInputError(
            f"Line {row + offset}: column '{names[j]}' holds {body.iloc[row, j]}, beyond float32's range "
            f"(±{FLOAT32_MAX:.3g}); rescale the data."
        )
    return points, names
