"""``python -m adapt``: the command line (see :mod:`adapt._cli`)."""

from __future__ import annotations

from ._cli import main

raise SystemExit(main())
