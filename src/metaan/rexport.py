"""A bridge back to R: the analysis as a self-contained metafor script.

:func:`to_r` writes an R script that carries the data inline, fits the same
model with metafor (``escalc`` then ``rma``, ``rma.mh`` or ``rma.peto``, with
the same estimator, test and confidence level), and prints metafor's numbers
beside metaan's with their relative differences. It stops with a non-zero
status when any differs by more than a tolerance (1e-6 by default), so a
reviewer can check a metaan analysis in R with ``Rscript analysis.R``.

The script needs only R and the metafor package (Viechtbauer 2010, J Stat
Softw 36(3), doi:10.18637/jss.v036.i03).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from metaan.errors import InputError
from metaan.results import MetaResult

__all__ = ["R_COUNT_MEASURES", "to_r"]

#: Measures whose escalc call the script can repeat from raw columns.
R_COUNT_MEASURES = ("OR", "RR", "RD", "SMD", "MD", "PLO", "ZCOR")

#: metaan's method -> metafor's ``method`` of rma (metafor >= 3.0 names EE so).
_RMA_METHODS = ("EE", "DL", "HE", "HS", "SJ", "ML", "REML", "EB", "PM")

#: Methods metafor solves by iteration, with a stopping rule looser than metaan's.
_ITERATIVE = ("ML", "REML", "EB", "PM")

#: (label, metaan attribute, R expression) of the numbers compared.
_COMPARED: tuple[tuple[str, str, str], ...] = (
    ("estimate", "estimate", "as.numeric(res$beta)"),
    ("se", "se", "res$se"),
    ("statistic", "stat", "res$zval"),
    ("p-value", "pval", "res$pval"),
    ("ci.lb", "ci_lb", "res$ci.lb"),
    ("ci.ub", "ci_ub", "res$ci.ub"),
    ("QE", "QE", "res$QE"),
    ("QEp", "QEp", "res$QEp"),
)
_RANDOM: tuple[tuple[str, str, str], ...] = (
    ("tau2", "tau2", "res$tau2"),
    ("I2", "I2", "res$I2"),
    ("H2", "H2", "res$H2"),
    ("pi.lb", "pi_lb", "pred$pi.lb"),
    ("pi.ub", "pi_ub", "pred$pi.ub"),
)


def to_r(
    result: MetaResult,
    *,
    data: pd.DataFrame | None = None,
    columns: Mapping[str, str] | None = None,
    escalc_options: Mapping[str, Any] | None = None,
    source: str | None = None,
    tolerance: float = 1e-6,
) -> str:
    """An R script that reproduces ``result`` with metafor and compares the numbers.

    Parameters
    ----------
    result
        A fit by :func:`metaan.fit`, :func:`metaan.fit_mh` or :func:`metaan.fit_peto`.
    data
        The study table the effects came from. With ``columns``, the script
        carries the raw columns of the studies that were fitted and recomputes
        ``yi`` and ``vi`` with ``escalc``; required for Mantel-Haenszel and
        Peto fits, which metafor fits from the counts.
    columns
        escalc argument -> column of ``data`` (``{"ai": "tpos", ...}``).
    escalc_options
        ``add``, ``to`` and ``drop00`` as given to :func:`metaan.escalc`.
    source
        The file the data came from, named in the script's header.
    tolerance
        The largest difference the script accepts: relative for numbers of
        size 1 or more, absolute below (so a tau^2 of 0 compares with one of 1e-12).

    Returns
    -------
    str
        The script, UTF-8 text.

    Raises
    ------
    InputError
        A Mantel-Haenszel or Peto fit without the counts, or a measure metafor
        cannot recompute from the columns given.
    """
    raw = _raw_columns(result, data, columns)
    lines = _header(result, source)
    lines += _data_frame(result, data, raw)
    lines += _fit_lines(result, raw, dict(escalc_options or {}))
    lines += _comparison(result, tolerance)
    return "\n".join(lines) + "\n"


def _raw_columns(
    result: MetaResult, data: pd.DataFrame | None, columns: Mapping[str, str] | None
) -> dict[str, str]:
    """The escalc arguments the script recomputes yi and vi from (empty: yi and vi inline)."""
    counts = result.method in ("MH", "PETO")
    if data is None or not columns or result.measure not in R_COUNT_MEASURES:
        if counts:
            raise InputError(
                f"a {result.method} fit is reproduced in R from the 2x2 counts, which the "
                "result does not hold",
                fix="pass data= and columns= (or use metaan export --r FILE on the data file)",
            )
        return {}
    missing = [c for c in columns.values() if c not in data.columns]
    if missing:
        raise InputError(
            f"the table has no column {', '.join(missing)}",
            fix="give columns= the names of the table's columns",
        )
    return dict(columns)


def _header(result: MetaResult, source: str | None) -> list[str]:
    from metaan import __version__

    return [
        "# Reproduce a metaan analysis with R's metafor, and compare the numbers.",
        f"# Written by metaan {__version__}"
        + (f" from {_comment(source)}" if source else "")
        + f": {result.method}, test {result.test}, {result.level:g}% level, k = {result.k}.",
        '# Run with: Rscript THIS_FILE   (needs install.packages("metafor"))',
        *(
            f"# Not pooled: row {e.row} ({_comment(e.study or '')}): {_comment(e.reason)}"
            for e in result.excluded
        ),
        "",
        "suppressPackageStartupMessages(library(metafor))",
        "",
    ]


def _comment(text: str) -> str:
    return " ".join(str(text).split())


def _data_frame(result: MetaResult, data: pd.DataFrame | None, raw: Mapping[str, str]) -> list[str]:
    """``dat <- data.frame(...)``: the fitted studies, with labels and yi, vi or raw columns."""
    cells: dict[str, str] = {"study": _r_strings(result.labels)}
    if raw:
        assert data is not None  # raw columns come only with data
        picked = _rows_of(result, data)
        for argument, column in raw.items():
            cells[argument] = _r_numbers(pd.to_numeric(picked[column], errors="coerce"))
    else:
        cells["yi"] = _r_numbers(result.yi)
        cells["vi"] = _r_numbers(result.vi)
    body = ",\n".join(f"  {name} = {values}" for name, values in cells.items())
    return ["dat <- data.frame(", body, "  , stringsAsFactors = FALSE)", ""]


def _rows_of(result: MetaResult, data: pd.DataFrame) -> pd.DataFrame:
    from metaan.io import spreadsheet_rows

    where = {int(r): i for i, r in enumerate(spreadsheet_rows(data))}
    if any(r is None or r not in where for r in result.rows):
        raise InputError("cannot match the fitted studies to the rows of the table")
    return data.iloc[[where[int(r)] for r in result.rows if r is not None]]


def _fit_lines(result: MetaResult, raw: Mapping[str, str], options: dict[str, Any]) -> list[str]:
    level = f"level = {_r_number(result.level)}"
    if result.method in ("MH", "PETO"):
        call = "rma.mh" if result.method == "MH" else "rma.peto"
        args = ", ".join(f"{a} = {a}" for a in raw)
        measure = f'measure = "{result.measure}", ' if result.method == "MH" else ""
        return [f"res <- {call}({args}, data = dat, {measure}{level})", "print(res)", ""]
    out = []
    if raw:
        args = ", ".join(f"{a} = {a}" for a in raw)
        extra = ""
        if options:
            extra = (
                f", add = {_r_number(float(options.get('add', 0.5)))}"
                f', to = "{options.get("to", "only0")}"'
                f", drop00 = {'TRUE' if options.get('drop00') else 'FALSE'}"
            )
        out.append(f'dat <- escalc(measure = "{result.measure}", {args}, data = dat{extra})')
    if result.method not in _RMA_METHODS:
        raise InputError(f"no metafor call for the method {result.method}")
    control = ""
    if result.method in _ITERATIVE:
        # metafor stops its iterations at a change of 1e-5 (threshold) or uniroot's
        # default tolerance; metaan solves to 1e-14, so metafor is asked to do so too.
        control = ", control = list(threshold = 1e-12, tol = 1e-12, maxiter = 1000)"
    out += [
        f'res <- rma(yi, vi, data = dat, method = "{result.method}", test = "{result.test}", '
        f"{level}{control})",
        "print(res)",
    ]
    if result.model == "random":
        out.append("pred <- predict(res)")
        if result.prediction == "meta":
            out.append(
                "# metaan used R meta's prediction interval; metafor's differs, so the "
                "interval is not compared."
            )
    return [*out, ""]


def _comparison(result: MetaResult, tolerance: float) -> list[str]:
    compared = list(_COMPARED)
    if result.model == "random":
        meta_pi = result.prediction == "meta"
        compared += [c for c in _RANDOM if not (meta_pi and c[0].startswith("pi"))]
    labels, ours, theirs = [], [], []
    for label, attribute, expression in compared:
        value = getattr(result, attribute)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        labels.append(f'"{label}"')
        ours.append(_r_number(float(value)))
        theirs.append(expression)
    return [
        f"metaan <- c({', '.join(ours)})",
        f"metafor <- c({', '.join(theirs)})",
        f"names(metaan) <- names(metafor) <- c({', '.join(labels)})",
        "# relative difference for numbers of size 1 or more, absolute below",
        "difference <- abs(metafor - metaan) / pmax(abs(metafor), 1)",
        "print(signif(cbind(metaan, metafor, difference), 10))",
        f"tolerance <- {_r_number(tolerance)}",
        "if (any(is.na(difference)) || any(difference > tolerance)) {",
        '  cat("metaan and metafor DIFFER beyond", tolerance, "\\n")',
        "  quit(status = 1)",
        "}",
        'cat("metaan and metafor agree within", tolerance, "\\n")',
    ]


def _r_number(value: float) -> str:
    """A double as R reads it back exactly (17 significant digits; NA, Inf)."""
    if math.isnan(value):
        return "NA"
    if math.isinf(value):
        return "Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _r_numbers(values: Any) -> str:
    array = np.asarray(values, dtype=float)
    return "c(" + ", ".join(_r_number(float(v)) for v in array) + ")"


def _r_strings(values: Sequence[str]) -> str:
    return "c(" + ", ".join(_r_string(v) for v in values) + ")"


def _r_string(text: str) -> str:
    """A double-quoted R string literal, escaped so any text survives."""
    escaped = []
    for char in str(text):
        if char in ('"', "\\"):
            escaped.append("\\" + char)
        elif char == "\n":
            escaped.append("\\n")
        elif char == "\t":
            escaped.append("\\t")
        elif ord(char) < 32 or ord(char) == 127:
            escaped.append(f"\\x{ord(char):02x}")
        else:
            escaped.append(char)
    return '"' + "".join(escaped) + '"'
