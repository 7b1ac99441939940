"""What a feature adds to the config loader, as a value the loader receives.

The loader (``probe.config.load``) knows the spine's own keys; everything else arrives in a
``ConfigExtension`` passed to ``parse_config``: top-level sections (``prompts:``,
``ledger:``, ...), extra per-endpoint keys (``required_context``, ``stuck_after``, ...),
cross-checks over the built config, the sections that supply endpoints at run time
(``discovery:``) and the check names an endpoint may list. Extensions merge in order, and
the order is the order problems are reported in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from probe.config.fields import Fields, Problems

if TYPE_CHECKING:
    from probe.config.model import Config


@dataclass(frozen=True, slots=True)
class ParseContext:
    """What a section parser may need besides its raw value: the environment the config is
    loaded with and the endpoint keys every extension adds (``discovery.defaults`` accepts
    them)."""

    env: Mapping[str, str]
    endpoint_keys: tuple[str, ...] = ()


# (raw value, field path, problems, context) -> the section's value in ``Config.sections``
SectionParser = Callable[[Any, str, Problems, ParseContext], Any]
# the endpoint's fields -> its value in ``Endpoint.extra`` (None: absent)
EndpointKeyParser = Callable[[Fields], Any]
# cross-checks over the built config; they add problems, and any problem fails the load
Validator = Callable[["Config", Problems], None]
# cross-checks that also need the environment; they run after every ``Validator``
EnvValidator = Callable[["Config", Problems, Mapping[str, str]], None]


def _frozen(mapping: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, slots=True)
class ConfigExtension:
    sections: Mapping[str, SectionParser] = field(default_factory=dict)
    endpoint_keys: Mapping[str, EndpointKeyParser] = field(default_factory=dict)
    validators: tuple[Validator, ...] = ()
    env_validators: tuple[EnvValidator, ...] = ()
    # top-level sections that supply endpoints at run time: with one present,
    # ``endpoints:`` may be empty
    endpoint_sources: frozenset[str] = frozenset()
    # check names an endpoint may list in ``checks:``
    checks: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "sections", _frozen(self.sections))
        object.__setattr__(self, "endpoint_keys", _frozen(self.endpoint_keys))

    @classmethod
    def merge(cls, *parts: ConfigExtension) -> ConfigExtension:
        """One extension holding every part, in order; a key claimed twice is a bug."""
        sections: dict[str, SectionParser] = {}
        keys: dict[str, EndpointKeyParser] = {}
        for part in parts:
            for name, section in part.sections.items():
                _claim(sections, name, section, "config section")
            for name, key in part.endpoint_keys.items():
                _claim(keys, name, key, "endpoint key")
        return cls(
            sections=sections, endpoint_keys=keys,
            validators=tuple(v for p in parts for v in p.validators),
            env_validators=tuple(v for p in parts for v in p.env_validators),
            endpoint_sources=frozenset(s for p in parts for s in p.endpoint_sources),
            checks=tuple(dict.fromkeys(c for p in parts for c in p.checks)),
        )


def _claim(into: dict[str, Any], name: str, value: Any, what: str) -> None:
    if name in into:
        raise ValueError(f'{what} "{name}" is claimed by two features')
    into[name] = value
