"""``metaan fit``: fit a meta-analytic model to a table of studies."""
