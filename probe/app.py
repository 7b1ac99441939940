"""The composition root: every feature, in order, merged into the one ``Plugins`` set the CLI
hands to the daemon, ``once``, ``gate`` and the demo.

Order matters and is visible here: config problems are reported in this order (a feature's
sections, keys and validators after the ones before it), start-up hooks run in it
(discovery first, so the ledger starts on the discovered fleet), and /metrics lists families
in it.
"""

from __future__ import annotations

from probe import demo, gate
from probe.core_checks.registry import CORE_CHECKS
from probe.discovery import plugin as discovery
from probe.export import plugin as export
from probe.features import Feature, Plugins
from probe.incidents import plugin as incidents
from probe.ledger import plugin as ledger
from probe.maintenance import plugin as maintenance
from probe.prompts import plugin as prompts
from probe.scheduler import endpoint_jobs
from probe.serverless import plugin as serverless
from probe.status import plugin as status
from probe.vllm import plugin as vllm

# The spine: the models check, one job per endpoint, and the deployment gate.
CORE = Feature(name="core", checks=CORE_CHECKS, planners=(endpoint_jobs,),
               commands=(gate.add_parser,))

FEATURES: tuple[Feature, ...] = (
    CORE,
    discovery.FEATURE,  # lists RunPod's fleet; its hook runs before the others'
    vllm.FEATURE,  # engine liveness and load
    # the probe's own vantage and fleet incidents; before the ledger, so an endpoint's entry
    # written with the result that opened an incident already cites it
    incidents.FEATURE,
    ledger.FEATURE,  # state with hysteresis, the append-only ledger, LEARNING.md
    maintenance.FEATURE,  # windows from the config and the command line
    prompts.FEATURE,  # governed prompts, context fit, token budget
    serverless.FEATURE,  # queue conditions, round trips
    export.FEATURE,  # generated dashboards and alert rules
    status.FEATURE,  # the status page: / and /status.json beside /metrics
    demo.FEATURE,  # the simulated fleet with the real daemon
)
PLUGINS = Plugins.of(*FEATURES)
