"""Shared test configuration: hypothesis profiles chosen by SLATEDB_PY_HYPOTHESIS_PROFILE
(dev: quick; ci: the default under CI=true; nightly: long)."""

import os

from hypothesis import HealthCheck, settings

settings.register_profile("dev", max_examples=40, deadline=None)
settings.register_profile(
    "ci", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("nightly", max_examples=3000, deadline=None)
settings.load_profile(
    os.environ.get("SLATEDB_PY_HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev")
)


import pytest  # noqa: E402

from tests.support import STORE_KINDS, make_store  # noqa: E402


@pytest.fixture(params=STORE_KINDS)
def store(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    with make_store(request.param) as s:
        yield s
