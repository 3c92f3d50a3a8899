"""The small base every result object shares.

A result is a frozen dataclass that computes nothing after it is made. It
prints itself in one line, ``<ClassName short summary>``; :meth:`Result.summary`
is the text a person reads (what the command line prints), :meth:`Result.to_dict`
every number JSON-ready, :meth:`Result.to_frame` a table, and a notebook shows
the summary (``_repr_html_``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Result"]


class Result(ABC):
    """The shared behaviour of metaan's result objects.

    Subclasses are ``@dataclass(frozen=True, repr=False)`` (so that this
    ``__repr__`` is used) and implement :meth:`summary`, :meth:`to_dict` and
    :meth:`to_frame`; :meth:`_short` gives the few numbers the repr shows.
    """

    def _short(self) -> str:
        """The few words the repr shows after the class name."""
        return ""

    def __repr__(self) -> str:
        short = self._short()
        return f"<{type(self).__name__}{' ' + short if short else ''}>"

    @abstractmethod
    def summary(self) -> str:
        """The result as a person reads it (multi-line text)."""

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """Every number as a JSON-ready dict (NaN becomes None)."""

    @abstractmethod
    def to_frame(self) -> pd.DataFrame:
        """The result as a table."""

    def _repr_html_(self) -> str:
        """How a notebook shows the result: its summary, as preformatted text."""
        import html  # only notebooks show results as HTML; not imported by every command

        return f'<pre class="metaan-result">{html.escape(self.summary())}</pre>'
