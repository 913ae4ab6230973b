"""A bounded load test: a mixed load (``bench/loadmix.py``) for a few seconds on each database, with the
limits off and again with them on but the loader exempt, answered without a single error while
``GET /version`` stays quick. The figures are printed (run with ``-s`` to see them); ``bench/load.py``
runs the same mix for longer against a real ``serve`` process.
"""

from __future__ import annotations

import pytest

from bench.loadmix import Mix, run
from sregistry_jupyter.registry.services.limits import Limiter, Limits, parse_networks

SECONDS = 8.0
# A stalled event loop shows as seconds (a held database lock cost 10 s per request, exhausted pools 30 s);
# the bound catches that even on a busy two-core machine. The figure itself is bench/load.py's to report.
P99_BOUND = 1.0
PROBE_ADDRESS = "127.0.0.2"
LOADER = "loader"
LIMITS_OFF = {"limiter": Limiter(Limits())}
LOADER_EXEMPT = {
    "limiter": Limiter(
        Limits(
            rate_limit=20,
            anonymous_rate_limit=10,
            weekly_pull_limit_collection=5,
            weekly_pull_limit_container=5,
            exempt_users=frozenset({LOADER}),
            exempt_networks=parse_networks([f"{PROBE_ADDRESS}/32"]),
        )
    )
}


@pytest.mark.slow
@pytest.mark.parametrize("registry_settings", [LIMITS_OFF, LOADER_EXEMPT], ids=["limits-off", "loader-exempt"])
def test_a_mixed_load_gets_no_error_and_version_stays_quick(registry, registry_settings):
    mix = Mix(registry.url, registry.add_user(LOADER, scope="write"), probe_address=PROBE_ADDRESS)
    mix.seed()

    outcome = run(mix, SECONDS)

    print(f"\n[{registry.db_url.split(':')[0]}] /version under load: {outcome.version.describe()}")
    print(f"answers: {dict(outcome.answers)}; {outcome.bytes_moved / (1 << 20):.0f} MiB moved")
    assert outcome.errors == []
    for kind in ("push", "pull", "library pull", "native list", "library search", "shub search", "token status"):
        assert outcome.answers[kind] >= 2, (kind, outcome.answers)
    assert len(outcome.version.samples) >= SECONDS / 0.05 / 4
    assert outcome.version.p99 < P99_BOUND, outcome.version.describe()
    registry.flush()
    if registry_settings is LOADER_EXEMPT:
        anonymous = registry.client()
        statuses = [anonymous.get("/api/v1/collections").status_code for _ in range(12)]
        assert statuses[-1] == 429, statuses  # the limits were on all along, for everyone not exempt
