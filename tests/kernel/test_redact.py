"""Credentials in URLs never reach the screen."""

from __future__ import annotations

import pytest

from lanes.kernel.redact import mask_url_secrets


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:s3cret@127.0.0.1:6379/0", "redis://***@127.0.0.1:6379/0"),
        ("rediss://user:s3cret@host:6380", "rediss://***@host:6380"),
        ("redis://host:6379/0?password=s3cret&db=1", "redis://host:6379/0?password=***&db=1"),
        ("redis://host/0?ssl=true;Token=s3cret", "redis://host/0?ssl=true;Token=***"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ],
)
def test_redact_masks_user_info_and_secret_query_values(url: str, shown: str) -> None:
    assert mask_url_secrets(url) == shown
    assert "s3cret" not in mask_url_secrets(f"before {url} after")
