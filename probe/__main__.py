"""Entry point for ``python -m probe``."""

from probe.cli import main

raise SystemExit(main())
