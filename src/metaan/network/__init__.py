"""Network meta-analysis, exact to R's netmeta 3.4.

:func:`fit_network` fits a network of trials by the graph-theoretical method
(Rücker 2012) with common and random effects, τ² by netmeta's generalised
DerSimonian-Laird estimator or REML, the design-by-treatment decomposition of Q,
P-scores and back-calculated direct and indirect evidence. :func:`pairwise` builds
the comparisons from arm-level data as netmeta's ``pairwise()`` does; :func:`netsplit`
splits the evidence (back-calculation or SIDDE) and :func:`sucra` ranks by simulation.
"""

from metaan.network._basic import Decomposition
from metaan.network.fit import NETWORK_METHODS, NetworkMethod, fit_network, netsplit
from metaan.network.pairwise import ARM_MEASURES, ArmMeasure, pairwise
from metaan.network.ranking import SMALL_VALUES, Ranking, SmallValues, sucra
from metaan.network.results import NetworkEstimates, NetworkResult
from metaan.network.split import SPLIT_METHODS, NetSplit, SplitEstimates, SplitMethod

__all__ = [
    "ARM_MEASURES",
    "NETWORK_METHODS",
    "SMALL_VALUES",
    "SPLIT_METHODS",
    "ArmMeasure",
    "Decomposition",
    "NetSplit",
    "NetworkEstimates",
    "NetworkMethod",
    "NetworkResult",
    "Ranking",
    "SmallValues",
    "SplitEstimates",
    "SplitMethod",
    "fit_network",
    "netsplit",
    "pairwise",
    "sucra",
]
