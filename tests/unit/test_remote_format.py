"""Small pure pieces of the remote CLI's output."""

from __future__ import annotations

import pytest

from agent.cli.remote import age


@pytest.mark.parametrize(("seconds", "text"), [
    (None, "-"), (-3.0, "0s"), (0.4, "0s"), (59.9, "59s"), (119, "119s"), (120, "2m"),
    (7199, "119m"), (7200, "2h"), (47 * 3600 + 3599, "47h"), (48 * 3600, "2d"),
    (400 * 86400, "400d"),
])
def test_age(seconds: float | None, text: str) -> None:
    assert age(seconds) == text
