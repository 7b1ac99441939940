"""The ``instance:`` and ``peers:`` keys: which probe this is among the probes of one fleet
(an HA pair: two daemons with the same config on two machines), and where the others are.

```yaml
instance: probe-1            # default: the host name; every ledger entry carries it
peers:                       # the other probes' metrics listeners (their status pages)
  - http://probe-2.example:9464
# or, with the clock and timeout of the peer view:
# peers: {urls: [http://probe-2.example:9464], every: 30s, timeout: 5s}
```

A peer's URL is its base (the status page's); a URL of this probe itself may be listed too,
so both machines can share one config: a peer that answers with this probe's own instance
name is left out of the page.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from probe.config.fields import Fields, Problems, url_problem
from probe.config.model import Peers, default_instance

# letters, digits, dot, dash, underscore: a host name fits, and so does a label value
INSTANCE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$")
MAX_PEERS = 16
PEER_KEYS = ("urls", "every", "timeout")


def parse_instance(raw: Any, problems: Problems) -> str:
    """This probe's name: the ``instance:`` key, else the host name."""
    if raw is None:
        return default_instance()
    if not isinstance(raw, str) or not INSTANCE.match(raw):
        problems.add("instance", "expected a name of letters, digits, '.', '-' or '_' (at most "
                                 f"63, starting with a letter or digit), got {raw!r}")
        return default_instance()
    return raw


def parse_peers(raw: Any, problems: Problems) -> Peers | None:
    """The ``peers:`` key: a list of URLs, or ``{urls, every, timeout}``; None when absent."""
    if raw is None:
        return None
    if isinstance(raw, list):
        raw = {"urls": raw}
    f = Fields(raw, "peers", problems, PEER_KEYS)
    urls = f.string_list("urls", ())
    if not urls and "urls" in f.raw:
        f.fail("urls", "expected at least one URL (or leave peers: out)")
    if len(urls) > MAX_PEERS:
        f.fail("urls", f"at most {MAX_PEERS} peers, got {len(urls)}")
        urls = urls[:MAX_PEERS]
    good = []
    for n, url in enumerate(urls):
        problem = url_problem(url) or _base_problem(url)
        if problem:
            problems.add(f"peers.urls[{n}]", problem)
        else:
            good.append(url.rstrip("/"))
    if len(set(good)) != len(good):
        f.fail("urls", "a peer is listed twice")
    every = f.duration("every", 30.0)
    timeout = f.duration("timeout", 5.0)
    if timeout > every:
        f.fail("timeout", "must not be longer than every (one question at a time per peer)")
    return Peers(tuple(good), every, timeout) if good else None


def _base_problem(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        return "a peer's URL is its base (no query or fragment): /status.json is added to it"
    return None
