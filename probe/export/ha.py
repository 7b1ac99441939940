"""The ``ha:`` config section: how the generated rules decide with several probes.

```yaml
ha:
  quorum: all     # all | majority | any: of the probes that are up and online
```

Two (or more) daemons with the same config on different machines are scraped as one job;
each series carries its target's ``instance``. An endpoint is down (or degraded, unknown)
when the quorum of the probes that are themselves up agree: ``all`` (the default) when every
one of them sees it so, ``majority`` when more than half do, ``any`` when one does. A probe
that is offline (``runpod_probe_offline``) has no vote, and a probe not scraped has none
either; the cause an alert names is one the quorum reports (two probes that see the endpoint
down for different reasons page once, as ``cause="other"``), and so is a fleet incident
(and an endpoint's being in one); so one probe's bad network pages nothing but
RunpodProbeOffline, and a replica cut off from RunPod's proxy alone pages nothing. The SLO
error ratios are each probe's own (by ``instance``), and the endpoint's is the quorum's:
the lowest of them with ``all``, the median with ``majority``, the highest with ``any``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from probe.config.fields import Fields, Problems

QUORUMS = ("all", "majority", "any")


@dataclass(frozen=True, slots=True)
class HaSettings:
    quorum: str = "all"

    def aggregate(self, values: str, by: str) -> str:
        """The quorum's value of the probes' ``values`` (error ratios): the lowest of them
        (``all``: every probe sees at least it), the median, or the highest."""
        if self.quorum == "majority":
            return f"quantile by ({by}) (0.5,\n{values}\n)"
        return f"{'min' if self.quorum == 'all' else 'max'} by ({by}) (\n{values}\n)"

    def agreed(self, counted: str, voters: str, on: str = "endpoint") -> str:
        """Of ``counted`` (how many probes report each thing), what the quorum of ``voters``
        (how many probes vote, matched ``on`` those labels) reports, as 1."""
        need = {"all": f">= bool on ({on}) group_left ()\n{voters}",
                "majority": f"* 2 > bool on ({on}) group_left ()\n{voters}",
                "any": ">= bool 1"}[self.quorum]
        return f"{counted}\n{need}"


def parse_ha(raw: Any, path: str, problems: Problems) -> HaSettings:
    f = Fields(raw, path, problems, ("quorum",))
    quorum = f.text("quorum", "all")
    if quorum not in QUORUMS:
        f.fail("quorum", f"expected one of {', '.join(QUORUMS)}, got {quorum!r}")
        quorum = "all"
    return HaSettings(quorum=quorum)
