"""A registry that limits requests: the client raises ``RateLimited`` with the registry's ``Retry-After``."""

from __future__ import annotations

import pytest

from sregistry_jupyter.client import RateLimited
from sregistry_jupyter.registry.services.limits import Limiter, Limits


@pytest.fixture
def registry_settings() -> dict:
    return {"limiter": Limiter(Limits(rate_limit=3))}


def test_too_many_requests_say_when_to_come_back(registry, connect) -> None:
    alice = connect(registry.url, registry.add_user("alice"))
    with pytest.raises(RateLimited) as limited:
        for _ in range(10):
            alice.whoami()
    assert limited.value.status == 429 and 0 < limited.value.retry_after <= 60
    assert "request" in limited.value.message
