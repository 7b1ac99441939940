"""Refuse secrets written into the config file: keys, tokens and passwords live in env vars."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

# Keys whose value would be a secret; the file must name an env var instead.
SECRET_KEYS = frozenset(
    {"api_key", "apikey", "key", "token", "access_token", "password", "passwd", "secret",
     "authorization", "bearer", "auth"}
)
# Shapes of real credentials: RunPod, OpenAI-style, Hugging Face, GitHub, JWT-like bearer.
_SECRET_SHAPES = re.compile(
    r"(rpa_[A-Za-z0-9]{16,}|sk-[A-Za-z0-9_-]{16,}|hf_[A-Za-z0-9]{20,}|gh[pousr]_[A-Za-z0-9]{20,}"
    r"|eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.)"
)
_SECRET_QUERY = frozenset(
    {"key", "api_key", "apikey", "token", "access_token", "password", "secret"}
)


def find_literal_secrets(node: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """Yield ``(path, reason)`` for every place the raw YAML tree holds a literal secret."""
    if isinstance(node, dict):
        for key, value in node.items():
            sub = f"{path}.{key}" if path else str(key)
            if str(key).lower() in SECRET_KEYS and value not in (None, ""):
                yield sub, "literal secrets are not allowed; name an environment variable " \
                    "with api_key_env instead"
                continue
            yield from find_literal_secrets(value, sub)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from find_literal_secrets(value, f"{path}[{index}]")
    elif isinstance(node, str):
        reason = _secret_in_string(node)
        if reason:
            yield path, reason


def mask_secrets(text: str) -> str:
    """Hide anything secret-shaped, so a refusal message never repeats the secret."""
    text = _SECRET_SHAPES.sub("***", text)
    text = re.sub(r"(://[^/\s:@]*:)[^@\s/]+@", r"\1***@", text)
    names = "|".join(sorted(_SECRET_QUERY))
    return re.sub(rf"([?&](?:{names})=)[^&\s\")]+", r"\1***", text, flags=re.IGNORECASE)


def _secret_in_string(text: str) -> str | None:
    if _SECRET_SHAPES.search(text):
        return "looks like a literal API key or token; put it in an environment variable"
    if "://" in text:
        parts = urlsplit(text)
        if parts.password or (parts.username and "{" not in parts.username):
            return "URL carries credentials (user:password@); use api_key_env instead"
        for name, _ in parse_qsl(parts.query, keep_blank_values=True):
            if name.lower() in _SECRET_QUERY:
                return f"URL carries a credential in its query (?{name}=); use api_key_env instead"
    return None
