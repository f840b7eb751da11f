"""Reading CSV and Parquet files column by column, with every problem named by file, line
and column: the shared machinery under the preset readers (``readers``) and the declared
reader (``declared``).

The fast path reads typed columns with pyarrow's multithreaded CSV reader; only when it
fails does a slower pass read text to find every bad line. A column's *kind* says how its
values are read: ``int``, ``float``, ``bool`` (0/1, true/false), ``date``, ``str``, ``key``
(series keys: text or integers, as given, never empty) and ``auto`` (numbers when every
value is one, flags as 0/1, else text).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from storecast.data.quality import Issue
from storecast.data.schema import DEPT, HOLIDAY, SOURCE_ROW, STORE, WEEK
from storecast.data.spec import as_key_values
from storecast.errors import DataError

NULL_VALUES = ["", "NA", "N/A", "NaN", "nan", "NULL", "null", "#N/A"]
TRUE_VALUES = ["1", "True", "TRUE", "true"]
FALSE_VALUES = ["0", "False", "FALSE", "false"]

#: supported date formats, by name -> strptime pattern; one per file
DATE_FORMATS = {"dd-mm-yyyy": "%d-%m-%Y", "yyyy-mm-dd": "%Y-%m-%d", "dd/mm/yy": "%d/%m/%y"}
_DATE_SHAPES = {
    "dd-mm-yyyy": r"\d{1,2}-\d{1,2}-\d{4}",
    "yyyy-mm-dd": r"\d{4}-\d{1,2}-\d{1,2}",
    "dd/mm/yy": r"\d{1,2}/\d{1,2}/\d{2}",
}
# Same shape, other field order: a file that also reads this way is ambiguous.
_DATE_RIVALS = {
    "dd-mm-yyyy": {"mm-dd-yyyy": "%m-%d-%Y"},
    "dd/mm/yy": {"mm/dd/yy": "%m/%d/%y", "yy/mm/dd": "%y/%m/%d"},
    "yyyy-mm-dd": {},
}
_INT_RE = r"^\s*[+-]?\d+\s*$"
_FLOAT_RE = r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?\s*$|^\s*[+-]?(?i:inf|infinity|nan)\s*$"
_THOUSANDS_RE = r"^\s*[+-]?\d{1,3}([,.' ]\d{3})+([.,]\d+)?\s*$"
_DECIMAL_COMMA_RE = r"^\s*[+-]?\d+,\d+\s*$"

Kind = Literal["int", "float", "bool", "date", "str", "key", "auto"]
_KINDS: dict[str, Kind] = {STORE: "int", DEPT: "int", WEEK: "date", HOLIDAY: "bool", "store_type": "str"}
_MAX_ROWS_IN_MESSAGE = 5


class ReadFailure(DataError):
    """The input cannot be read; ``issues`` lists every problem found (all errors)."""

    def __init__(self, issues: list[Issue], path: str) -> None:
        first = issues[0]
        more = f" (and {len(issues) - 1} more problem(s))" if len(issues) > 1 else ""
        row = first.rows[0] if first.rows else None
        super().__init__(first.message + more, path=first.file or path, row=row)
        self.issues = issues


class DateFormatError(ValueError):
    """Date values that cannot be read unambiguously; ``bad`` are the offending values."""

    def __init__(self, check: str, message: str, bad: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.check, self.message, self.bad = check, message, list(bad)


def _kind(canonical: str, kinds: dict[str, Kind] | None = None) -> Kind:
    if kinds is not None and canonical in kinds:
        return kinds[canonical]
    return _KINDS.get(canonical, "float")


@dataclass(frozen=True)
class DateRule:
    """How a date column is read: a strftime ``format``, or detection where a weekly file's
    dates all fall on ``weekday`` (``None``: on one weekday, whichever) settles ambiguity;
    ``hint`` ends the message of an ambiguous file (e.g. which flag fixes it)."""

    format: str | None = None
    weekday: int | None = 4
    hint: str = "write them as yyyy-mm-dd"


FRIDAY_DATES = DateRule()


# ---- dates ------------------------------------------------------------------------------------


def _one_weekday(parsed: pd.DatetimeIndex, weekday: int | None) -> bool:
    days = parsed.dayofweek
    if weekday is None:
        return bool(len(days)) and bool((days == days[0]).all())
    return bool((days == weekday).all())


def detect_date_format(values: Iterable[str], rule: DateRule = FRIDAY_DATES) -> str:
    """The one supported format that reads every value, or ``DateFormatError``.

    Detection looks at all distinct values: a file mixing formats is an error, and so is
    one whose values also read with day and month swapped (``05-02-2010``...) unless only
    one reading puts every date on a Friday (a Walmart week is dated by its Friday; with
    ``rule.weekday=None``, on any one weekday), which settles short files such as a one-week
    ingest.
    """
    uniques = pd.Index(pd.unique(pd.Series([str(v).strip() for v in values], dtype=object)))
    if len(uniques) == 0:
        raise DateFormatError("dates", "no date values")
    shape = pd.Series(None, index=uniques, dtype=object)
    for name, pattern in _DATE_SHAPES.items():
        shape[uniques.str.fullmatch(pattern) & shape.isna()] = name
    if shape.isna().any():
        bad = list(shape.index[shape.isna()])
        raise DateFormatError(
            "dates", f"not a date in a supported format (dd-mm-yyyy, yyyy-mm-dd or dd/mm/yy): {bad[0]!r}", bad
        )
    families = shape.value_counts()
    if len(families) > 1:
        main = families.index[0]
        bad = list(shape.index[shape != main])
        seen = ", ".join(f"{name} ({n} value(s))" for name, n in families.items())
        raise DateFormatError("mixed_date_formats", f"dates mix formats: {seen}; a file must use one format", bad)
    fam = str(families.index[0])
    primary = pd.to_datetime(uniques, format=DATE_FORMATS[fam], errors="coerce")
    rivals = {
        name: parsed
        for name, fmt in _DATE_RIVALS[fam].items()
        if not (parsed := pd.to_datetime(uniques, format=fmt, errors="coerce")).isna().any()
    }
    if primary.isna().any():
        bad = list(uniques[primary.isna()])
        if rivals:
            raise DateFormatError(
                "dates", f"dates read only as {'/'.join(rivals)} (e.g. {bad[0]!r}), which is not accepted; "
                f"{rule.hint}", bad,
            )
        raise DateFormatError("dates", f"invalid {fam} date {bad[0]!r}", bad)
    if not rivals or (_one_weekday(primary, rule.weekday) and not any(_one_weekday(r, rule.weekday) for r in rivals.values())):
        return fam
    raise DateFormatError(
        "ambiguous_dates",
        f"dates are ambiguous: every value reads as {fam} and as {' and as '.join(rivals)}; "
        f"{rule.hint}",
        list(uniques[:_MAX_ROWS_IN_MESSAGE]),
    )


def parse_dates(values: Sequence[str], fmt: str) -> pd.DatetimeIndex:
    """Parse with a named format from ``DATE_FORMATS`` (strict: invalid values raise)."""
    return pd.DatetimeIndex(pd.to_datetime(pd.Index([str(v).strip() for v in values]), format=DATE_FORMATS[fmt]))


# ---- line bookkeeping ---------------------------------------------------------------------------


def _record_lines(n_records: int, skipped: Sequence[int]) -> np.ndarray:
    """1-based file line of each kept record, given the (1-based) lines the parser skipped.

    Record r is the (r + 2)-th kept line counting the header; each skipped line before it
    pushes it down by one.
    """
    kept = np.arange(n_records, dtype=np.int64) + 2
    if not skipped:
        return kept
    s = np.sort(np.asarray(skipped, dtype=np.int64))
    shifted = s - np.arange(len(s))
    return kept + np.searchsorted(shifted, kept, side="right")


@dataclass
class _Raw:
    """A read file before conversion: an arrow table of the wanted columns and line numbers."""

    table: pa.Table
    lines: np.ndarray
    issues: list[Issue] = field(default_factory=list)


def _sniff_header(path: Path) -> list[str]:
    """Header names, after the checks that need no parsing: empty, header only, delimiter."""
    with path.open("rb") as fh:
        head = fh.read(1 << 16)
    display = str(path)
    if not head.lstrip(b"\xef\xbb\xbf \t\r\n"):
        raise ReadFailure([Issue("empty_file", "error", "the file is empty", file=display)], display)
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 4:  # not just a multibyte character cut by the 64 KiB window
            line = head[: exc.start].count(b"\n") + 1
            raise ReadFailure([Issue("encoding", "error", f"not UTF-8 text (byte {exc.start})", [line], file=display)], display) from None
        text = head[: exc.start].decode("utf-8")
    text = text.lstrip("\ufeff")
    first, _, rest = text.replace("\r\n", "\n").replace("\r", "\n").partition("\n")
    if not rest.strip() and len(head) < (1 << 16):
        raise ReadFailure([Issue("no_rows", "error", "the file has a header but no data rows", [2], file=display)], display)
    if "," not in first:
        for delim, name in ((";", "semicolons"), ("\t", "tabs"), ("|", "pipes")):
            if delim in first:
                raise ReadFailure([Issue(
                    "delimiter", "error", f"the header is separated by {name}; storecast reads comma-separated files",
                    [1], file=display)], display)
    return list(next(csv.reader([first])))  # raw names: pyarrow matches them verbatim


def _match_columns(header: Sequence[str], mapping: dict[str, str], required: Iterable[str],
                   display: str, ignore: Iterable[str] = ()) -> tuple[dict[str, str], list[Issue]]:
    """file column -> canonical, matched case-insensitively; missing required columns fail."""
    norm: dict[str, str] = {}
    for name in header:
        key = name.strip().lower()
        if key in norm:
            raise ReadFailure([Issue("duplicate_columns", "error", f"column {name!r} appears twice in the header", [1], file=display)], display)
        norm[key] = name
    wanted = {src.lower(): canon for src, canon in mapping.items()}
    missing = [src for src in mapping if src in set(required) and src.lower() not in norm]
    if missing:
        raise ReadFailure([Issue(
            "missing_columns", "error",
            f"required column(s) {', '.join(missing)} missing; the header has {', '.join(header)}", [1], file=display,
        )], display)
    matched = {norm[key]: canon for key, canon in wanted.items() if key in norm}
    skip = {c.lower() for c in ignore}
    extra = [name for name in header if name.strip().lower() not in wanted and name.strip().lower() not in skip]
    notes = []
    if extra:
        notes.append(Issue("extra_columns", "warning", f"column(s) {', '.join(extra)} are not used", [1],
                           count=len(extra), file=display))
    return matched, notes


def _arrow_type(kind: Kind, as_text: bool) -> pa.DataType:
    if as_text or kind in ("str", "key", "auto"):
        return pa.string()
    if kind == "date":
        return pa.dictionary(pa.int32(), pa.string())
    return {"int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}[kind]


def _read_csv_raw(path: Path, columns: dict[str, str], display: str, kinds: dict[str, Kind] | None = None) -> _Raw:
    """Typed multithreaded read; on any trouble, a single-threaded text read that knows lines."""

    def attempt(as_text: bool, threads: bool) -> tuple[pa.Table, list[pacsv.InvalidRow]]:
        bad: list[pacsv.InvalidRow] = []

        def handler(row: pacsv.InvalidRow) -> str:
            bad.append(row)
            return "skip"

        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(use_threads=threads, block_size=1 << 24),
            parse_options=pacsv.ParseOptions(delimiter=",", ignore_empty_lines=False, invalid_row_handler=handler),
            convert_options=pacsv.ConvertOptions(
                column_types={src: _arrow_type(_kind(canon, kinds), as_text) for src, canon in columns.items()},
                include_columns=list(columns),
                null_values=NULL_VALUES, true_values=TRUE_VALUES, false_values=FALSE_VALUES,
                strings_can_be_null=True, quoted_strings_can_be_null=True,
            ),
        )
        return table, bad

    try:
        table, bad = attempt(as_text=False, threads=True)
        if bad:  # malformed lines: re-read single-threaded to learn their line numbers
            table, bad = attempt(as_text=False, threads=False)
    except pa.ArrowInvalid:
        try:
            table, bad = attempt(as_text=True, threads=False)
        except pa.ArrowInvalid as exc:
            raise ReadFailure([Issue("unreadable", "error", f"cannot parse as CSV: {exc}", file=display)], display) from exc
    issues: list[Issue] = []
    # With ignore_empty_lines=False a blank line is a record of nulls, so records and file
    # lines stay in step; InvalidRow.number is already the 1-based file line.
    skipped = [row.number for row in bad if row.number is not None]
    malformed = bad
    if malformed:
        rows = [row.number for row in malformed if row.number is not None]
        example = malformed[0]
        hint = ""
        if example.actual_columns > example.expected_columns:
            hint = " (a comma inside a number such as 1,234.50? thousands separators are not accepted)"
        elif example.actual_columns < example.expected_columns:
            hint = " (truncated row?)"
        issues.append(Issue(
            "row_shape", "error",
            f"{len(malformed)} row(s) do not have {example.expected_columns} fields; row {rows[0] if rows else '?'} has "
            f"{example.actual_columns}: {example.text[:80]!r}{hint}",
            rows, count=len(malformed), file=display,
        ))
    lines = _record_lines(table.num_rows, skipped)
    blank = np.ones(table.num_rows, dtype=bool)
    for column in table.columns:
        blank &= np.asarray(column.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if blank.any():  # blank lines (or rows of empty cells) carry nothing: drop them
        keep = ~blank
        table, lines = table.filter(pa.array(keep)), lines[keep]
    return _Raw(table, lines, issues)


def _read_parquet_raw(path: Path, columns: dict[str, str], display: str) -> _Raw:
    try:
        table = pq.read_table(path, columns=list(columns))
    except (pa.ArrowException, OSError) as exc:
        raise ReadFailure([Issue("unreadable", "error", f"cannot read as Parquet: {exc}", file=display)], display) from exc
    return _Raw(table, np.arange(table.num_rows, dtype=np.int64) + 2)


def _parquet_header(path: Path, display: str) -> list[str]:
    try:
        names = pq.read_schema(path).names
        rows = pq.ParquetFile(path).metadata.num_rows
    except (pa.ArrowException, OSError) as exc:
        raise ReadFailure([Issue("unreadable", "error", f"cannot read as Parquet: {exc}", file=display)], display) from exc
    if rows == 0:
        raise ReadFailure([Issue("no_rows", "error", "the file has no data rows", file=display)], display)
    return [str(n) for n in names]


# ---- converting columns ---------------------------------------------------------------------------


def _bad_rows(mask: np.ndarray, lines: np.ndarray) -> list[int]:
    return lines[mask].tolist()


def _value_issue(check: str, src: str, message: str, mask: np.ndarray, values: pa.Array | None,
                 lines: np.ndarray, display: str) -> Issue:
    rows = _bad_rows(mask, lines)
    example = ""
    if values is not None:
        example = f" {values[int(np.flatnonzero(mask)[0])].as_py()!r}"
    return Issue(check, "error", f"column {src!r}, row {rows[0]}:{example} {message}"
                 + (f" ({len(rows)} rows: {', '.join(map(str, rows[:_MAX_ROWS_IN_MESSAGE]))}{', ...' if len(rows) > _MAX_ROWS_IN_MESSAGE else ''})" if len(rows) > 1 else ""),
                 rows, count=len(rows), file=display)


def _matches(text: pa.ChunkedArray, pattern: str, null: bool) -> np.ndarray:
    found = pc.fill_null(pc.match_substring_regex(text, pattern), null)
    return np.asarray(found.to_numpy(zero_copy_only=False), dtype=bool)


def _explain_bad_numbers(text: pa.ChunkedArray, bad: np.ndarray, src: str, kind: Kind,
                         lines: np.ndarray, display: str) -> list[Issue]:
    """One issue per kind of unreadable number, each with all its rows."""
    values = text.combine_chunks()
    thousands = bad & _matches(text, _THOUSANDS_RE, False)
    comma = bad & ~thousands & _matches(text, _DECIMAL_COMMA_RE, False)
    decimal = bad & ~thousands & _matches(text, _FLOAT_RE, False) if kind == "int" else np.zeros_like(bad)
    rest = bad & ~thousands & ~comma & ~decimal
    found = [
        ("thousands_separator", thousands, "has a thousands separator; write plain numbers such as 1234567.89"),
        ("types", comma, "uses a decimal comma; write a decimal point"),
        ("types", decimal, "is not a whole number"),
        ("types", rest, "is text, expected a number"),
    ]
    return [_value_issue(check, src, why, mask, values, lines, display) for check, mask, why in found if mask.any()]


def _convert_numeric(col: pa.ChunkedArray, src: str, kind: Kind, lines: np.ndarray,
                     display: str) -> tuple[np.ndarray | None, list[Issue]]:
    """Text or arrow numbers -> float64 / int64 numpy, reporting every unreadable cell."""
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type) or pa.types.is_dictionary(col.type):
        text = col.cast(pa.string())
        bad = ~_matches(text, _INT_RE if kind == "int" else _FLOAT_RE, True)
        if bad.any():
            return None, _explain_bad_numbers(text, bad, src, kind, lines, display)
        col = pc.cast(pc.utf8_trim_whitespace(text), pa.float64() if kind == "float" else pa.int64())
    if kind == "int":
        if pa.types.is_floating(col.type):
            values = col.to_numpy()
            frac = np.isfinite(values) & (values != np.round(values))
            if frac.any():
                return None, [_value_issue("types", src, "is not a whole number", frac, col.combine_chunks(), lines, display)]
        nulls = np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        if nulls.any():
            return None, [_value_issue("missing_values", src, "is empty; every row needs a key", nulls, None, lines, display)]
        try:
            return col.cast(pa.int64()).to_numpy(), []
        except pa.ArrowInvalid as exc:
            return None, [Issue("types", "error", f"column {src!r}: {exc}", file=display)]
    if not (pa.types.is_floating(col.type) or pa.types.is_integer(col.type) or pa.types.is_decimal(col.type)):
        return None, [Issue("types", "error", f"column {src!r} has type {col.type}, expected numbers", file=display)]
    return np.asarray(col.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype="float64"), []


def _convert_bool(col: pa.ChunkedArray, src: str, lines: np.ndarray, display: str) -> tuple[np.ndarray | None, list[Issue]]:
    if pa.types.is_boolean(col.type):
        values = col
    elif pa.types.is_integer(col.type):
        values = col
        odd = ~np.asarray(pc.fill_null(pc.is_in(col, pa.array([0, 1], col.type)), True).to_numpy(zero_copy_only=False), dtype=bool)
        if odd.any():
            return None, [_value_issue("types", src, "is not a 0/1 holiday flag", odd, col.combine_chunks(), lines, display)]
        values = col.cast(pa.bool_())
    else:
        text = pc.utf8_trim_whitespace(col.cast(pa.string()))
        known = pc.is_in(text, pa.array(TRUE_VALUES + FALSE_VALUES))
        odd = ~np.asarray(pc.fill_null(known, True).to_numpy(zero_copy_only=False), dtype=bool)
        if odd.any():
            return None, [_value_issue("types", src, "is not a holiday flag (0/1, true/false)", odd, text.combine_chunks(), lines, display)]
        values = pc.is_in(text, pa.array(TRUE_VALUES))
        values = pc.if_else(col.is_null(), pa.scalar(None, pa.bool_()), values)
    nulls = np.asarray(values.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if nulls.any():
        return None, [_value_issue("missing_values", src, "is empty; the holiday flag is required", nulls, None, lines, display)]
    return np.asarray(values.to_numpy(zero_copy_only=False), dtype=bool), []


def _convert_dates(col: pa.ChunkedArray, src: str, lines: np.ndarray, display: str,
                   rule: DateRule = FRIDAY_DATES) -> tuple[np.ndarray | None, list[Issue]]:
    nulls = np.asarray(col.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    if nulls.any():
        return None, [_value_issue("missing_values", src, "is empty; every row needs a date", nulls, None, lines, display)]
    if pa.types.is_timestamp(col.type) or pa.types.is_date(col.type):
        return col.cast(pa.timestamp("ns")).to_numpy().astype("datetime64[ns]"), []
    if not pa.types.is_dictionary(col.type):
        col = pc.dictionary_encode(col.cast(pa.string()))
    col = col.unify_dictionaries()
    dictionary = col.chunk(0).dictionary.to_pylist() if col.num_chunks else []
    codes = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in col.chunks]) if col.num_chunks else np.array([], dtype=np.int32)
    if rule.format is not None:
        return _parse_with_format(dictionary, codes, rule.format, src, lines, display)
    try:
        fmt = detect_date_format(dictionary, rule)
    except DateFormatError as exc:
        bad_codes = [i for i, v in enumerate(dictionary) if v.strip() in set(exc.bad)]
        mask = np.isin(codes, bad_codes)
        rows = _bad_rows(mask, lines) if mask.any() else []
        where = f"column {src!r}" + (f", row {rows[0]}" if rows else "")
        listed = f" (rows {', '.join(map(str, rows[:_MAX_ROWS_IN_MESSAGE]))}{', ...' if len(rows) > _MAX_ROWS_IN_MESSAGE else ''})" if len(rows) > 1 else ""
        return None, [Issue(exc.check, "error", f"{where}: {exc.message}{listed}", rows, count=max(len(rows), 1), file=display)]
    parsed = parse_dates(dictionary, fmt).to_numpy().astype("datetime64[ns]")
    return parsed[codes], []


def _parse_with_format(dictionary: list[str], codes: np.ndarray, fmt: str, src: str, lines: np.ndarray,
                       display: str) -> tuple[np.ndarray | None, list[Issue]]:
    """Dates read with a declared strftime format; every value it cannot read is an error."""
    stripped = pd.Index([str(v).strip() for v in dictionary])
    parsed = pd.to_datetime(stripped, format=fmt, errors="coerce")
    bad_codes = np.flatnonzero(pd.isna(parsed))
    if len(bad_codes):
        mask = np.isin(codes, bad_codes)
        values = pa.array([dictionary[i] for i in codes])
        return None, [_value_issue("dates", src, f"does not match --date-format {fmt!r}", mask, values, lines, display)]
    return np.asarray(parsed.to_numpy().astype("datetime64[ns]"))[codes], []


def _convert_keys(col: pa.ChunkedArray, src: str, lines: np.ndarray, display: str) -> tuple[np.ndarray | None, list[Issue]]:
    """Series keys as given: integers when every value is a plain integer, else text; never empty."""
    text = pc.utf8_trim_whitespace(col.cast(pa.string()))
    empty = np.asarray(pc.fill_null(pc.equal(text, ""), True).to_numpy(zero_copy_only=False), dtype=bool)
    if empty.any():
        return None, [_value_issue("missing_values", src, "is empty; every row needs a value for each key column",
                                   empty, None, lines, display)]
    return as_key_values(np.asarray(text.to_pylist(), dtype=object)), []


def _convert_auto(col: pa.ChunkedArray, src: str, lines: np.ndarray, display: str) -> tuple[np.ndarray | None, list[Issue]]:
    """A declared covariate: numbers (flags true/false as 1/0) when every value reads as one,
    else text (a category such as a store type)."""
    if pa.types.is_boolean(col.type):
        return np.asarray(pc.cast(col, pa.float64()).to_numpy(zero_copy_only=False), dtype="float64"), []
    if pa.types.is_integer(col.type) or pa.types.is_floating(col.type) or pa.types.is_decimal(col.type):
        return np.asarray(col.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype="float64"), []
    if pa.types.is_timestamp(col.type) or pa.types.is_date(col.type):
        return None, [Issue("types", "error", f"column {src!r} holds dates; a covariate must be numbers or text", file=display)]
    text = pc.utf8_trim_whitespace(col.cast(pa.string()))
    flags = pc.is_in(text, pa.array(TRUE_VALUES + FALSE_VALUES))
    numeric = _matches(text, _FLOAT_RE, True) | np.asarray(pc.fill_null(flags, False).to_numpy(zero_copy_only=False), dtype=bool)
    if numeric.all():
        as_flag = pc.if_else(pc.is_in(text, pa.array(TRUE_VALUES[1:])), pa.scalar("1"),
                             pc.if_else(pc.is_in(text, pa.array(FALSE_VALUES[1:])), pa.scalar("0"), text))
        return np.asarray(pc.cast(as_flag, pa.float64()).to_numpy(zero_copy_only=False), dtype="float64"), []
    thousands = _matches(text, _THOUSANDS_RE, False) | _matches(text, _DECIMAL_COMMA_RE, False)
    if thousands.any() and (thousands | numeric).all():
        return None, _explain_bad_numbers(text, ~numeric, src, "float", lines, display)
    values = np.asarray(text.to_pylist(), dtype=object)
    values[pd.isna(values)] = None
    return values, []


Columns = dict[str, np.ndarray]


def _to_columns(raw: _Raw, columns: dict[str, str], display: str, kinds: dict[str, Kind] | None = None,
                dates: DateRule = FRIDAY_DATES) -> Columns:
    """Convert every wanted column to numpy; collect all conversion problems before failing."""
    issues = list(raw.issues)
    data: Columns = {}
    for src, canon in columns.items():
        col = raw.table.column(src)
        kind = _kind(canon, kinds)
        if kind == "date":
            values, found = _convert_dates(col, src, raw.lines, display, dates)
        elif kind == "bool":
            values, found = _convert_bool(col, src, raw.lines, display)
        elif kind == "str":
            values, found = np.asarray(col.cast(pa.string()).to_pylist(), dtype=object), []
        elif kind == "key":
            values, found = _convert_keys(col, src, raw.lines, display)
        elif kind == "auto":
            values, found = _convert_auto(col, src, raw.lines, display)
        else:
            values, found = _convert_numeric(col, src, kind, raw.lines, display)
        issues += found
        if values is not None:
            data[canon] = values
    errors = [i for i in issues if i.severity == "error"]
    if errors:
        raise ReadFailure(errors, display)
    data[SOURCE_ROW] = raw.lines
    return data


def _read_file(path: Path, mapping: dict[str, str], required: Iterable[str],
               ignore: Iterable[str] = (), *, kinds: dict[str, Kind] | None = None,
               dates: DateRule = FRIDAY_DATES) -> tuple[Columns, list[Issue]]:
    display = str(path)
    parquet = path.suffix.lower() in {".parquet", ".pq"}
    header = _parquet_header(path, display) if parquet else _sniff_header(path)
    columns, notes = _match_columns(header, mapping, required, display, ignore)
    raw = _read_parquet_raw(path, columns, display) if parquet else _read_csv_raw(path, columns, display, kinds)
    if raw.table.num_rows == 0 and not raw.issues:
        raise ReadFailure([Issue("no_rows", "error", "the file has a header but no data rows", [2], file=display)], display)
    return _to_columns(raw, columns, display, kinds, dates), notes


def _join_key(cols: Columns, on: Sequence[str], lo: int, span: int) -> np.ndarray:
    """One int64 per row from a store and optionally a week (days offset into ``span``)."""
    key = cols[STORE].astype(np.int64)
    if WEEK in on:
        days = cols[WEEK].astype("datetime64[D]").astype(np.int64) - lo
        key = key * span + days
    return key


def _join(left: Columns, right: Columns, on: Sequence[str], display: str, what: str) -> None:
    """Left-join ``right``'s columns onto ``left`` in place by a sorted-key lookup (no merge copies).

    ``right`` is small (a row per store or store-week) and must be unique on ``on``."""
    lo, span = 0, 1
    if WEEK in on:
        ends = [w.astype("datetime64[D]").astype(np.int64) for w in (left[WEEK].min(), left[WEEK].max(),
                                                                      right[WEEK].min(), right[WEEK].max())]
        lo, span = int(min(ends)), int(max(ends) - min(ends)) + 1
    rkey = _join_key(right, on, lo, span)
    order = np.argsort(rkey, kind="stable")
    sorted_key = rkey[order]
    dup = np.flatnonzero(sorted_key[1:] == sorted_key[:-1])
    if len(dup):
        lines = right[SOURCE_ROW]
        rows = sorted({int(lines[order[i]]) for i in dup} | {int(lines[order[i + 1]]) for i in dup})
        raise ReadFailure([Issue("duplicates", "error", f"{what} appear more than once (rows {', '.join(map(str, rows[:5]))})",
                                 rows, file=display)], display)
    lkey = _join_key(left, on, lo, span)
    pos = np.searchsorted(sorted_key, lkey)
    pos_ok = np.minimum(pos, len(sorted_key) - 1)
    found = sorted_key[pos_ok] == lkey
    take = order[pos_ok]
    for name, values in right.items():
        if name in (*on, SOURCE_ROW):
            continue
        picked = values[take]
        if not found.all():
            picked = picked.astype(object) if values.dtype == object else picked.astype("float64")
            picked[~found] = None if values.dtype == object else np.nan
        left[name] = picked


