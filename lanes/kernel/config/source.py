"""Where a config came from, and how far it is trusted.

A ``./lanes.yaml`` found by searching the current directory may belong to a checkout nobody
vetted. Such a file is used (and announced), but it may not send work to another Redis than the
exported ``REDIS_URL``, nor have a routing hook imported from the current directory; a file
named with ``--config`` or ``$LANES_CONFIG`` may do both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from lanes.kernel.errors import ConfigError
from lanes.kernel.redact import mask_url_secrets


class Origin(StrEnum):
    """How the config file was chosen (see :func:`lanes.kernel.config.locate_config`)."""

    FLAG = "--config"
    ENV = "$LANES_CONFIG"
    CURRENT_DIRECTORY = "found in the current directory"
    USER = "found in ~/.config/lanes"
    EXAMPLE = "the shipped example"


@dataclass(frozen=True)
class ConfigSource:
    """The file a config was loaded from, how it was chosen, and the ``LANES_*`` variables
    that overrode it (config key ``a.b`` → variable name)."""

    path: Path
    origin: Origin
    overrides: Mapping[str, str] = field(default_factory=dict)

    @property
    def named(self) -> bool:
        """True when the file was named explicitly (``--config`` or ``$LANES_CONFIG``)."""
        return self.origin in (Origin.FLAG, Origin.ENV)

    @property
    def from_current_directory(self) -> bool:
        """True for a ``./lanes.yaml`` found by searching: trusted less (module docstring)."""
        return self.origin is Origin.CURRENT_DIRECTORY

    def describe(self) -> str:
        """``/abs/lanes.yaml (found in the current directory)``."""
        return f"{self.path.absolute()} ({self.origin.value})"


def refuse_redis_override(source: ConfigSource, redis_url: str | None, env_url: str | None) -> None:
    """ConfigError when a file found by searching the current directory sets a ``redis_url``
    other than the exported ``REDIS_URL`` (``env_url``). A named file, or a ``redis_url`` set
    by ``LANES_REDIS_URL``, is the user's own choice and wins as documented."""
    if not source.from_current_directory or "redis_url" in source.overrides:
        return
    if not (redis_url and env_url) or redis_url == env_url:
        return
    raise ConfigError(
        f"this file was found by searching the current directory and sets redis_url to "
        f"{mask_url_secrets(redis_url)}, but REDIS_URL is {mask_url_secrets(env_url)}",
        source=str(source.path), key="redis_url",
        fix=f"name the file (--config {source.path} or LANES_CONFIG) to use its Redis, or "
        "remove redis_url from it to use $REDIS_URL",
    )  # fmt: skip
