"""Files lanes reads at run time: the default config, the demo's sample diff, the shipped
pipeline and its sample document. :func:`package_file` finds them through the package, so
they are where the package is installed, never looked up in a source tree."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def package_file(name: str) -> Path:
    """``lanes/data/NAME`` as installed (e.g. ``package_file("lanes.yaml")``)."""
    return Path(str(resources.files(__name__).joinpath(name)))
