"""The BCG vaccine trials (log risk ratios; Colditz et al. 1994), shared by the tests:
absolute latitude, year and allocation of each trial."""

from __future__ import annotations

import pandas as pd

BCG = pd.DataFrame(
    {
        "trial": [f"T{i}" for i in range(1, 14)],
        "yi": [-0.8893, -1.5854, -1.3481, -1.4416, -0.2175, -0.7861, -1.6209, 0.0120, -0.4694,
               -1.3713, -0.3394, 0.4459, -0.0173],
        "vi": [0.3256, 0.1946, 0.4154, 0.0200, 0.0512, 0.0069, 0.2230, 0.0040, 0.0564, 0.0730,
               0.0124, 0.5325, 0.0714],
        "ablat": [44, 55, 42, 52, 13, 44, 19, 13, 27, 42, 18, 33, 33],
        "year": [1948, 1949, 1960, 1977, 1973, 1953, 1973, 1980, 1968, 1961, 1974, 1969, 1976],
        "alloc": ["random", "random", "random", "random", "alternate", "alternate", "random",
                  "random", "random", "systematic", "systematic", "systematic", "systematic"],
    }
)  # fmt: skip
