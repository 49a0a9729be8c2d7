"""Config files that would hang, crash or silently lose a key are refused with the reason."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lanes.kernel.config import load_config
from lanes.kernel.config.yaml_file import MAX_BYTES, MAX_NODES, read_yaml
from lanes.kernel.errors import ConfigError

from ..conftest import EXAMPLE

BOMB = """\
a: &a ["x","x","x","x","x","x","x","x","x"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def _file(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "lanes.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_yaml_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    assert len(BOMB) < 400
    with pytest.raises(ConfigError, match=f"more than {MAX_NODES} values") as info:
        load_config(_file(tmp_path, BOMB), env={})
    assert "aliases" in str(info.value)


def test_yaml_recursive_alias_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="refers to itself"):
        read_yaml(_file(tmp_path, "models: &m\n  inner: *m\n"))


def test_yaml_duplicate_key_names_both_lines(tmp_path: Path) -> None:
    text = EXAMPLE.read_text().replace("instances:\n", "instances:\n  zai: {}\n", 1)
    with pytest.raises(ConfigError, match=r"duplicate key 'zai' \(first on line \d+\)") as info:
        load_config(_file(tmp_path, text), env={})
    assert "line" in str(info.value)


def test_yaml_non_utf8_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte 7\)"):
        load_config(_file(tmp_path, b"models:\xff\xfe\n"), env={})


def test_yaml_anchors_that_stay_small_still_work(tmp_path: Path) -> None:
    data = read_yaml(_file(tmp_path, "a: &x {k: 1}\nb: *x\n"))
    assert data == {"a": {"k": 1}, "b": {"k": 1}}


def test_yaml_complex_key_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid YAML"):
        read_yaml(_file(tmp_path, "? [a, b]\n: 1\n"))


def test_yaml_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "lanes.yaml"
    os.mkfifo(fifo)
    script = "import sys; from pathlib import Path\n"
    script += "from lanes.kernel.config.yaml_file import read_yaml\n"
    script += "read_yaml(Path(sys.argv[1]))"
    # In a child process: a read that blocked on the FIFO would hang there, not here.
    proc = subprocess.run([sys.executable, "-c", script, str(fifo)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert proc.returncode != 0 and "not a regular file" in proc.stderr


def test_yaml_file_larger_than_any_config_is_refused(tmp_path: Path) -> None:
    path = _file(tmp_path, b"#" * (MAX_BYTES + 1))
    with pytest.raises(ConfigError, match="larger than 16 MiB"):
        read_yaml(path)
