"""Property-based checks (hypothesis) of the request models and of validate_graph: for any
JSON-ish input, they answer with their documented errors and nothing else, and whatever
they accept can be written out as UTF-8 JSON (to ComfyUI, to a record, to a response).
Bounded: a few hundred examples each, a few seconds in all."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from backend.errors import ApiError
from backend.graph_errors import to_api_error
from backend.request_errors import to_invalid_request
from tests.fuzz_strategies import GRAPHS, JSON_VALUES
from workflows.object_info import load_object_info
from workflows.registry import ROUTES
from workflows.request_models import WorkflowRequest
from workflows.validate import GraphProblem, comfy_message, validate_graph

OBJECT_INFO = load_object_info()
BOUNDED = settings(max_examples=200, deadline=None,
                   suppress_health_check=[HealthCheck.too_slow])


def _bodies(model: type[BaseModel]) -> st.SearchStrategy[dict]:
    """Dicts of the model's own field names (so validation gets past 'unknown field')
    with any JSON values, sometimes one unknown field."""
    fields = {name: JSON_VALUES for name in model.model_fields}
    if "workflow" in fields:
        fields["workflow"] = GRAPHS | JSON_VALUES
    return st.fixed_dictionaries({}, optional=fields) | st.dictionaries(
        st.text(max_size=8), JSON_VALUES, max_size=3)


def _sendable(value: object) -> None:
    json.dumps(value, allow_nan=False, ensure_ascii=False).encode("utf-8")


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_request_models_raise_only_validation_errors(route):
    model = ROUTES[route].request_model

    @BOUNDED
    @given(_bodies(model))
    def check(body: dict) -> None:
        try:
            request = model.model_validate(body)
        except ValidationError as exc:
            error = to_invalid_request(list(exc.errors()), model)
            _sendable(error.to_body())  # the 400 itself can always be sent
            return
        _sendable(request.model_dump(mode="json"))

    check()


@BOUNDED
@given(GRAPHS | JSON_VALUES)
def test_validate_graph_returns_problems_for_anything(graph):
    problems = validate_graph(graph, OBJECT_INFO)
    assert all(isinstance(p, GraphProblem) for p in problems)
    for problem in problems:
        comfy_message(problem)  # the double's wire form of it works too
    if problems:
        error = to_api_error(problems, user_graph=True, models_dir=".")
        assert isinstance(error, ApiError) and error.status in (400, 503)
        _sendable(error.to_body())


@BOUNDED
@given(GRAPHS)
def test_accepted_workflow_requests_validate_without_error(graph):
    try:
        request = WorkflowRequest.model_validate({"workflow": graph})
    except ValidationError:
        return
    validate_graph(request.workflow, OBJECT_INFO)
    _sendable(request.model_dump(mode="json"))
