"""``python -m lanes`` is ``lanes``."""

from lanes.entry import main

main()
