"""Publication-quality plots drawn from metaan's result objects.

Every function takes a result object, draws it and returns a
:class:`matplotlib.figure.Figure` (never shown, never registered with pyplot);
nothing is computed beyond what a result holds. :func:`save` writes a figure
as SVG, PNG (300 dpi) or PDF, byte-identically for SVG and PDF.
"""

from metaan.plots._save import FORMATS, save
from metaan.plots.baujat import baujat
from metaan.plots.bubble import bubble
from metaan.plots.compare import compare
from metaan.plots.cumulative import cumulative
from metaan.plots.forest import forest, forest_pages
from metaan.plots.funnel import funnel
from metaan.plots.labbe import labbe
from metaan.plots.leave1out import leave1out
from metaan.plots.network import league_heatmap, netsplit_forest, network_forest, network_graph
from metaan.plots.radial import radial
from metaan.plots.rob import rob_summary, rob_traffic_light

__all__ = [
    "FORMATS",
    "baujat",
    "bubble",
    "compare",
    "cumulative",
    "forest",
    "forest_pages",
    "funnel",
    "labbe",
    "league_heatmap",
    "leave1out",
    "netsplit_forest",
    "network_forest",
    "network_graph",
    "radial",
    "rob_summary",
    "rob_traffic_light",
    "save",
]
