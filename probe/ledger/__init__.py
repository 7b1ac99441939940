"""The learning ledger: endpoint state with hysteresis, append-only hash-chained entries of
what changed, LEARNING.md appends from them, and retention of raw results.

- ``state``: per-endpoint up/down/unknown with hysteresis, and the facts worth an entry
- ``rules``: how each transition is phrased and how severe it is
- ``chain``: canonical content, SHA-256 hash chain, verification
- ``book``: the SQLite tables (append-only triggers) and their one writer
- ``observer``: results in, drafts out (the prober's observer)
- ``learning``: LEARNING.md appends; ``retention``: roll-up and pruning of old results
- ``settings``, ``plugin``, ``cli``: config sections, daemon/metrics wiring, commands
"""
