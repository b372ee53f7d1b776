"""Property-based fuzzing of the HTTP API (hypothesis): for any body, on any route, the
answer is never a 5xx other than 502/503/504, every error has the contract's shape, and the
one keep-alive connection all requests share stays usable. Bounded in examples."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.backend.helpers import error_of
from tests.fuzz_strategies import GRAPHS, JSON_VALUES, body_text
from workflows.registry import ROUTES

ALLOWED_5XX = {502, 503, 504}


def _bodies(route: str) -> st.SearchStrategy[bytes]:
    fields = {name: JSON_VALUES for name in ROUTES[route].request_model.model_fields}
    # small images when a body happens to be valid: the double renders them quickly
    fields.update({k: st.just(256) for k in ("width", "height") if k in fields})
    json_bodies = st.fixed_dictionaries({}, optional=fields) | JSON_VALUES
    return json_bodies.map(body_text) | st.binary(max_size=64)


GENERATION_ROUTES = sorted(set(ROUTES) - {"/workflow"})
ROUTE_AND_BODY = st.sampled_from(GENERATION_ROUTES).flatmap(
    lambda route: st.tuples(st.just(route), _bodies(route)))
# /workflow gets its own run: nearly-right graphs are where its bugs were
WORKFLOW_BODY = st.tuples(st.just("/workflow"), st.fixed_dictionaries(
    {"workflow": GRAPHS}, optional={"images": JSON_VALUES}).map(body_text) | _bodies("/workflow"))


@pytest.fixture(scope="module")
def pooled(backend_server_session):
    with httpx.Client(base_url=backend_server_session.url, timeout=60,
                      limits=httpx.Limits(max_connections=1, max_keepalive_connections=1)) as client:
        yield client


BOUNDED = settings(max_examples=200, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@BOUNDED
@given(ROUTE_AND_BODY)
def test_no_body_makes_a_500_or_breaks_the_connection(pooled, route_and_body):
    _check(pooled, *route_and_body)


@BOUNDED
@given(WORKFLOW_BODY)
def test_no_workflow_makes_a_500_or_breaks_the_connection(pooled, route_and_body):
    _check(pooled, *route_and_body)


def _check(pooled: httpx.Client, route: str, body: bytes) -> None:
    response = pooled.post(route, content=body, headers={"content-type": "application/json"})
    assert response.status_code < 500 or response.status_code in ALLOWED_5XX, response.text
    if response.status_code >= 400:
        error_of(response)  # the contract's shape
    assert pooled.get("/health").status_code == 200  # same connection, still usable
