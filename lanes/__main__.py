"""``python -m lanes`` is ``lanes``."""

from lanes.cli import main

main()
