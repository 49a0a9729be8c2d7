"""``python -m sim``: serve the simulator in the foreground.

``--profiles FILE`` reads YAML or JSON mapping instance names to :class:`Profile` fields;
the key ``"*"`` sets the profile of every instance not listed::

    claude1: {models: [claude-sonnet-4-6], requests_per_min: 50, latency_s: 0.2}
    "*": {latency_s: 0.05}
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml
from pydantic import TypeAdapter

from lanes.sim.profiles import Profile
from lanes.sim.simulator import DEFAULT_PROFILE, run_forever

DEFAULT_KEY = "*"


def load_profiles(path: Path) -> tuple[dict[str, Profile], Profile]:
    """The named profiles and the default one from a YAML/JSON file."""
    raw = yaml.safe_load(path.read_text()) or {}
    profiles = TypeAdapter(dict[str, Profile]).validate_python(raw)
    default = profiles.pop(DEFAULT_KEY, DEFAULT_PROFILE)
    return profiles, default


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sim", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--seed", type=int, default=0, help="seeds fault draws and jitter")
    parser.add_argument("--profiles", type=Path, help="YAML/JSON: instance -> profile fields")
    args = parser.parse_args(argv)
    profiles, default = load_profiles(args.profiles) if args.profiles else ({}, DEFAULT_PROFILE)
    run_forever(args.host, args.port, profiles, default, seed=args.seed)


if __name__ == "__main__":
    main()
