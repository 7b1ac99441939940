"""Configuration: a YAML file, validated at load, fail closed."""

from probe.config.load import ConfigError, load_config, parse_config
from probe.config.model import Config, Endpoint

__all__ = ["Config", "ConfigError", "Endpoint", "load_config", "parse_config"]
