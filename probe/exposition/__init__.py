"""/metrics as text: the exposition writer (``text``: families, rendering in slices of the
event loop, gzip, the WSGI app), the cache of each check's and endpoint's lines kept current
as the state changes (``series_cache``) and the per-check families it holds
(``check_series``). The state tells the cache what changed and knows nothing of the format."""
