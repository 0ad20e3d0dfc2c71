"""``python -m ailib.cli``: the same as the ``ailib`` console script."""

from __future__ import annotations

from ailib.cli import main

main()
