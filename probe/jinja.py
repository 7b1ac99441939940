"""The one way templates are rendered: Jinja with the package's ``templates/`` folder.

HTML is escaped (``select_autoescape``: every name on the status page is shown as text,
whatever it holds); Markdown and YAML are not (LEARNING.md rows and starter configs are
text for people, cells escaped by their own filters). Undefined names are errors.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jinja2


def environment(**filters: Callable[..., Any]) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("probe", "templates"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "htm"),
                                            default_for_string=False),
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined)
    env.filters.update(filters)
    return env
