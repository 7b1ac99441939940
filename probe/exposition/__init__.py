"""/metrics as text: the exposition writer (``text``: families, rendering in slices of the
event loop, gzip, the WSGI app), the cache of each check's and endpoint's lines kept current
as the state changes (``series_cache``) and the per-check families it holds
(``check_series``); and as delimited protobuf, with native histograms, when the daemon
offers it and a scraper asks for it (``protobuf``: the wire format of client_model's
metrics.proto, its series kept by a second ``series_cache``). The state tells the caches
what changed and knows nothing of the formats."""
