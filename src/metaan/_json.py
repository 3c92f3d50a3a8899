"""JSON-ready values: what every ``to_dict()``, ``--format json`` and ``results.json`` writes.

JSON has no NaN or infinity, so a number that is missing or not finite becomes
``None`` (``null``); numpy and pandas values become plain Python ones.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from typing import TYPE_CHECKING, Any, SupportsFloat

import numpy as np

if TYPE_CHECKING:
    import numpy.typing as npt
    from pandas.api.typing import NAType

__all__ = ["json_list", "json_number", "jsonable"]


def json_number(x: SupportsFloat | NAType | None) -> float | None:
    """``x`` as a float, or None when it is missing (None, pandas NA, NaN) or infinite."""
    if x is None or _is_pandas_missing(x):
        return None
    number = float(x)  # type: ignore[arg-type]
    return number if math.isfinite(number) else None


def _is_pandas_missing(value: object) -> bool:
    """pandas' NA or NaT (which exist only once pandas has been imported)."""
    pd = sys.modules.get("pandas")
    return pd is not None and (value is pd.NA or value is pd.NaT)


def json_list(values: npt.ArrayLike) -> list[Any]:
    """The elements of an array as a list of plain Python values (see :func:`jsonable`)."""
    return [jsonable(v) for v in np.asarray(values).tolist()]


def jsonable(value: Any) -> Any:
    """A JSON-ready copy of ``value``.

    Missing values (None, pandas NA and NaT, NaN) and infinities become None;
    numpy scalars become Python ``bool``, ``int`` or ``float``; arrays, lists and
    tuples become lists; dict keys become text; a data frame becomes a list of
    records; an object with ``to_dict()`` or a dataclass becomes its dict;
    anything else its text.
    """
    if value is None or _is_pandas_missing(value):
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, str):
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return json_number(value)
    if isinstance(value, np.ndarray):
        return json_list(value)
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    pd = sys.modules.get("pandas")
    if pd is not None and isinstance(value, pd.DataFrame):
        return [jsonable(r) for r in value.to_dict(orient="records")]
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return jsonable(to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable(dataclasses.asdict(value))
    return str(value)
