"""Validate an API-format ComfyUI graph the way ComfyUI's ``execution.validate_prompt`` does.

The checks, their order and the ``details`` / ``extra_info`` strings follow ComfyUI
(``execution._validate_prompt`` / ``validate_inputs``), so that a graph this module accepts
is accepted by a real ComfyUI with the same ``/object_info``, and a graph it rejects gets the
error a real ComfyUI would give. ``GraphProblem.message`` is written for a person instead.

Deliberate differences: ``dependent_outputs`` lists only the output nodes that really depend
on the failing node (ComfyUI lists every failing output seen so far), a dependency cycle is
reported as ``exception_during_validation`` instead of a RecursionError, and a negative
output index is out of range (Python would read it from the end). Links deeper than
``MAX_LINK_DEPTH`` are reported as the RecursionError ComfyUI's recursive validation would
hit, instead of exhausting our own stack; a ``class_type`` that is not a string is an
``invalid_prompt`` (ComfyUI would fail on it with a TypeError).

``validate_graph`` never raises for any JSON value as the graph: every oddity is a problem.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

# Error kinds that reject the whole prompt before any node is checked: ComfyUI answers them
# as the top-level `error` with empty `node_errors`.
PROMPT_LEVEL_KINDS = frozenset({"missing_node_type", "prompt_no_outputs", "invalid_prompt"})

_COMBO = "COMBO"
# ComfyUI leaves choice lists longer than this out of its error (model folders can be huge).
_MAX_LISTED_CHOICES = 20
# Each link level costs three stack frames here (and in ComfyUI); this keeps far below
# Python's default limit of 1000 whatever the caller's own stack depth.
MAX_LINK_DEPTH = 200


@dataclass(frozen=True)
class GraphProblem:
    kind: str
    node_id: str | None
    class_type: str | None
    input_name: str | None
    message: str
    details: str
    extra_info: dict
    dependent_outputs: tuple[str, ...] = ()


@dataclass
class _Error:
    """One entry of ComfyUI's per-node `errors` list, plus the person-readable text."""

    kind: str
    input_name: str | None
    message: str
    details: str
    extra_info: dict


@dataclass
class _NodeResult:
    ok: bool
    errors: list[_Error] = field(default_factory=list)


class _BadLink(Exception):
    """A link that ComfyUI fails on with a Python exception (missing node, bad index)."""

    def __init__(self, exception_type: str, details: str, input_name: str, message: str) -> None:
        super().__init__(details)
        self.exception_type = exception_type
        self.details = details
        self.input_name = input_name
        self.message = message


def _fake_traceback(where: str) -> list[str]:
    # ComfyUI sends traceback.format_tb(); keep the shape (a list of strings) without paths.
    return [f'  File "<validate>", in {where}\n']


def comfy_message(problem: GraphProblem) -> str:
    """ComfyUI's own short `message` for a problem (the wire needs it, GraphProblem keeps
    the person-readable one)."""
    info = problem.extra_info
    if problem.kind == "value_smaller_than_min":
        return f"Value {info['received_value']} smaller than min of {info['input_config'][1]['min']}"
    if problem.kind == "value_bigger_than_max":
        return f"Value {info['received_value']} bigger than max of {info['input_config'][1]['max']}"
    if problem.kind == "invalid_input_type":
        return f"Failed to convert an input value to a {info['input_config'][0]} value"
    if problem.kind == "exception_during_validation":
        inner = "linked_node" in info
        return "Exception when validating inner node" if inner else "Exception when validating node"
    if problem.kind == "missing_node_type":
        return f"Node '{info['node_title']}' not found. The custom node may not be installed."
    return {
        "required_input_missing": "Required input is missing",
        "value_not_in_list": "Value not in list",
        "return_type_mismatch": "Return type mismatch between linked nodes",
        "bad_linked_input": "Bad linked input, must be a length-2 list of [node_id, slot_index]",
        "prompt_no_outputs": "Prompt has no outputs",
        "invalid_prompt": "Cannot execute because a node is missing the class_type property.",
    }.get(problem.kind, problem.kind)


def types_match(received_type: Any, input_type: Any) -> bool:
    """ComfyUI's validate_node_input: equal, "*" on either side, a comma-separated type
    matching any of its parts, or a COMBO output into a choice input."""
    if received_type == input_type:
        return True
    received_is_combo = isinstance(received_type, list) or received_type == _COMBO
    input_is_combo = isinstance(input_type, list) or input_type == _COMBO
    if received_is_combo and input_is_combo:
        return True
    if not isinstance(received_type, str) or not isinstance(input_type, str):
        return False
    received = {t.strip() for t in received_type.split(",")}
    wanted = {t.strip() for t in input_type.split(",")}
    if "*" in received or "*" in wanted:
        return True
    return bool(received & wanted)


def _ordered_inputs(spec: dict) -> list[tuple[str, str, list]]:
    """(name, category, [type, extra]) for required then optional inputs, in UI order."""
    order = spec.get("input_order", {})
    result = []
    for category in ("required", "optional"):
        declared = spec.get("input", {}).get(category) or {}
        names = [n for n in order.get(category, []) if n in declared]
        names += [n for n in declared if n not in names]
        for name in names:
            result.append((name, category, declared[name]))
    return result


def _choices(input_type: Any, extra: dict) -> list | None:
    if isinstance(input_type, list):
        return input_type
    if input_type == _COMBO:
        return list(extra.get("options", []))
    return None


def _describe_range(extra: dict) -> str:
    low, high = extra.get("min"), extra.get("max")
    if low is not None and high is not None:
        return f"allowed {low}..{high}"
    if low is not None:
        return f"allowed >= {low}"
    return f"allowed <= {high}"


class _Validator:
    def __init__(self, graph: dict, object_info: dict) -> None:
        self.graph = graph
        self.object_info = object_info
        self.results: dict[str, _NodeResult] = {}
        self._in_progress: set[str] = set()

    def where(self, node_id: str) -> str:
        return f"Node {node_id} ({self.graph[node_id].get('class_type')})"

    def validate_node(self, node_id: str) -> _NodeResult:
        """ComfyUI's validate_inputs for one node; raises _BadLink as ComfyUI raises."""
        if node_id in self.results:
            return self.results[node_id]
        if node_id in self._in_progress:
            raise _BadLink("RecursionError", f"dependency cycle through node {node_id}", "",
                           f"{self.where(node_id)} is part of a dependency cycle.")
        if len(self._in_progress) >= MAX_LINK_DEPTH:
            raise _BadLink("RecursionError", "maximum recursion depth exceeded", "",
                           f"{self.where(node_id)} is more than {MAX_LINK_DEPTH} links away "
                           f"from an output node; the limit is {MAX_LINK_DEPTH}.")
        self._in_progress.add(node_id)
        try:
            result = self._check_inputs(node_id)
        finally:
            self._in_progress.discard(node_id)
        recorded = self.results.get(node_id)
        if recorded is not None:
            # A cycle came back here and recorded its error on this node meanwhile: keep it.
            result = _NodeResult(ok=False, errors=recorded.errors + result.errors)
        self.results[node_id] = result
        return result

    def _check_inputs(self, node_id: str) -> _NodeResult:
        node = self.graph[node_id]
        inputs = node.get("inputs")
        if not isinstance(inputs, dict):
            raise _BadLink("KeyError", "'inputs'", "",
                           f"{self.where(node_id)} has no 'inputs' object.")
        spec = self.object_info[node["class_type"]]
        errors: list[_Error] = []
        ok = True
        for name, category, declared in _ordered_inputs(spec):
            input_type = declared[0]
            extra = declared[1] if len(declared) > 1 and isinstance(declared[1], dict) else {}
            if name not in inputs:
                if category == "required":
                    errors.append(_Error(
                        "required_input_missing", name,
                        f"{self.where(node_id)} is missing its required input '{name}' "
                        f"(type {input_type if isinstance(input_type, str) else 'choice'}).",
                        name, {"input_name": name}))
                continue
            value = inputs[name]
            config = [input_type, extra]
            if isinstance(value, list):
                error, upstream_ok = self._check_link(node_id, name, value, config)
                if error is not None:
                    errors.append(error)
                ok = ok and upstream_ok
            else:
                error = self._check_value(node_id, name, value, config, inputs)
                if error is not None:
                    errors.append(error)
        return _NodeResult(ok=ok and not errors, errors=errors)

    def _check_link(self, node_id: str, name: str, link: list,
                    config: list) -> tuple[_Error | None, bool]:
        input_type = config[0]
        if len(link) != 2:
            return _Error(
                "bad_linked_input", name,
                f"{self.where(node_id)}, input '{name}': a link must be [node_id, output_index], "
                f"got {link!r}.",
                name, {"input_name": name, "input_config": config, "received_value": link}), True
        source_id, index = link
        if not isinstance(source_id, str) or source_id not in self.graph:
            raise _BadLink("KeyError", repr(source_id), name,
                           f"{self.where(node_id)}, input '{name}' links to node {source_id!r}, "
                           f"which is not in the graph.")
        source_class = self.graph[source_id]["class_type"]
        outputs = self.object_info[source_class].get("output", [])
        if not isinstance(index, int) or isinstance(index, bool):
            raise _BadLink("TypeError",
                           f"tuple indices must be integers or slices, not {type(index).__name__}",
                           name, f"{self.where(node_id)}, input '{name}': output index {index!r} "
                                 f"is not an integer.")
        if not 0 <= index < len(outputs):
            raise _BadLink("IndexError", "tuple index out of range", name,
                           f"{self.where(node_id)}, input '{name}' links to output {index} of node "
                           f"{source_id} ({source_class}), which has outputs 0..{len(outputs) - 1} "
                           f"({', '.join(map(str, outputs)) or 'none'}).")
        received_type = outputs[index]
        if not types_match(received_type, input_type):
            return _Error(
                "return_type_mismatch", name,
                f"{self.where(node_id)}, input '{name}' expects {input_type} but is linked to "
                f"output {index} of node {source_id} ({source_class}), which gives {received_type}.",
                f"{name}, received_type({received_type}) mismatch input_type({input_type})",
                {"input_name": name, "input_config": config, "received_type": received_type,
                 "linked_node": link}), True
        try:
            upstream = self.validate_node(source_id)
        except _BadLink as bad:
            # ComfyUI records an exception in an inner node on that node, with the
            # downstream input's name and config.
            self.results[source_id] = _NodeResult(ok=False, errors=[_Error(
                "exception_during_validation", bad.input_name or None, bad.message, bad.details,
                {"input_name": name, "input_config": config, "exception_message": bad.details,
                 "exception_type": bad.exception_type,
                 "traceback": _fake_traceback("validate_inputs"), "linked_node": link})])
            return None, False
        return None, upstream.ok

    def _check_value(self, node_id: str, name: str, value: Any, config: list,
                     inputs: dict) -> _Error | None:
        input_type, extra = config
        if isinstance(value, dict) and "__value__" in value:
            value = value["__value__"]
        original = value
        converters = {"INT": int, "FLOAT": float, "STRING": str, "BOOLEAN": bool}
        if isinstance(input_type, str) and input_type in converters:
            try:
                value = converters[input_type](value)
            except Exception as exc:  # noqa: BLE001 - mirrors ComfyUI, any conversion failure
                return _Error(
                    "invalid_input_type", name,
                    f"{self.where(node_id)}, input '{name}' needs a {input_type}; "
                    f"received {original!r} ({exc}).",
                    f"{name}, {original}, {exc}",
                    {"input_name": name, "input_config": config, "received_value": original,
                     "exception_message": str(exc)})
        numeric = isinstance(value, (int, float))
        if numeric and "min" in extra and value < extra["min"]:
            return _Error(
                "value_smaller_than_min", name,
                f"{self.where(node_id)}, input '{name}': {value} is smaller than the minimum "
                f"{extra['min']} ({_describe_range(extra)}).",
                name, {"input_name": name, "input_config": config, "received_value": value})
        if numeric and "max" in extra and value > extra["max"]:
            return _Error(
                "value_bigger_than_max", name,
                f"{self.where(node_id)}, input '{name}': {value} is bigger than the maximum "
                f"{extra['max']} ({_describe_range(extra)}).",
                name, {"input_name": name, "input_config": config, "received_value": value})
        choices = _choices(input_type, extra)
        if choices is not None and value not in choices:
            listed = str(choices) if len(choices) <= _MAX_LISTED_CHOICES else \
                f"(list of length {len(choices)})"
            allowed = ", ".join(map(repr, choices[:_MAX_LISTED_CHOICES])) or "none (empty list)"
            more = f" and {len(choices) - _MAX_LISTED_CHOICES} more" \
                if len(choices) > _MAX_LISTED_CHOICES else ""
            return _Error(
                "value_not_in_list", name,
                f"{self.where(node_id)}, input '{name}': {value!r} is not one of the allowed "
                f"values: {allowed}{more}.",
                f"{name}: '{value}' not in {listed}",
                {"input_name": name,
                 "input_config": config if len(choices) <= _MAX_LISTED_CHOICES else None,
                 "received_value": value})
        return None


def upstream_of(graph: dict, node_id: str) -> set[str]:
    """Every node reachable backwards through links from node_id, itself included."""
    seen: set[str] = set()
    stack = [node_id]
    while stack:
        current = stack.pop()
        if current in seen or not isinstance(graph.get(current), dict):
            continue
        seen.add(current)
        inputs = graph[current].get("inputs")
        for value in (inputs.values() if isinstance(inputs, dict) else ()):
            if isinstance(value, list) and len(value) == 2 and isinstance(value[0], str):
                stack.append(value[0])
    return seen


def output_node_classes(object_info: dict) -> frozenset[str]:
    """The node classes ComfyUI runs a graph for (SaveImage, PreviewImage, ...)."""
    return frozenset(name for name, spec in object_info.items()
                     if isinstance(spec, dict) and spec.get("output_node") is True)


def nodes_to_execute(graph: dict, output_classes: Collection[str],
                     skipped_outputs: Collection[str] = ()) -> set[str]:
    """The nodes ComfyUI executes for a queued graph: those its output nodes (less the ones
    that failed validation) depend on; a node nothing needs never runs."""
    outputs = [node_id for node_id, node in graph.items()
               if isinstance(node, dict) and isinstance(node.get("class_type"), str)
               and node["class_type"] in output_classes and node_id not in skipped_outputs]
    return set().union(*(upstream_of(graph, o) for o in outputs))


def _prompt_problem(kind: str, node_id: str | None, class_type: str | None, message: str,
                    details: str, extra_info: dict) -> list[GraphProblem]:
    return [GraphProblem(kind, node_id, class_type, None, message, details, extra_info)]


def _check_prompt_level(graph: Any, object_info: dict) -> tuple[list[GraphProblem], list[str]]:
    """The whole-prompt checks; returns (problems, output node ids)."""
    if not isinstance(graph, dict):
        return _prompt_problem("invalid_prompt", None, None,
                               f"The graph must be an object of node id -> node, "
                               f"got {type(graph).__name__}.", "", {}), []
    outputs: list[str] = []
    for node_id, node in graph.items():
        if not isinstance(node, dict) or "class_type" not in node:
            return _prompt_problem(
                "invalid_prompt", str(node_id), None,
                f"Node {node_id} has no class_type: every node needs "
                f"{{'class_type': ..., 'inputs': {{...}}}}.", f"Node ID '#{node_id}'", {}), []
        class_type = node["class_type"]
        if not isinstance(class_type, str):
            return _prompt_problem(
                "invalid_prompt", str(node_id), None,
                f"Node {node_id} has a class_type of JSON type {type(class_type).__name__}; it "
                f"must be the name of a node class such as 'SaveImage'.", f"Node ID '#{node_id}'", {}), []
        if class_type not in object_info:
            meta = node.get("_meta")
            title = meta.get("title", class_type) if isinstance(meta, dict) else class_type
            return _prompt_problem(
                "missing_node_type", str(node_id), class_type,
                f"Node {node_id} has class_type {class_type!r}, which this ComfyUI does not "
                f"know: the custom node may not be installed, or the name is misspelt.",
                f"Node ID '#{node_id}'",
                {"node_id": node_id, "class_type": class_type, "node_title": title}), []
        if object_info[class_type].get("output_node") is True:
            outputs.append(node_id)
    if not outputs:
        return _prompt_problem(
            "prompt_no_outputs", None, None,
            "The graph has no output node (such as SaveImage), so ComfyUI has nothing to run.",
            "", {}), []
    return [], outputs


def validate_graph(graph: dict, object_info: dict) -> list[GraphProblem]:
    """Every problem ComfyUI would report for this graph; empty when it would run it all.

    Only nodes that an output node depends on are checked, as ComfyUI does.
    """
    problems, outputs = _check_prompt_level(graph, object_info)
    if problems:
        return problems
    validator = _Validator(graph, object_info)
    failed_outputs: list[str] = []
    for output_id in outputs:
        try:
            result = validator.validate_node(output_id)
        except _BadLink as bad:
            result = _NodeResult(ok=False, errors=[_Error(
                "exception_during_validation", bad.input_name or None, bad.message, bad.details,
                {"exception_type": bad.exception_type,
                 "traceback": _fake_traceback("_validate_prompt")})])
            validator.results[output_id] = result
        if not result.ok:
            failed_outputs.append(output_id)

    dependents = {o: upstream_of(graph, o) for o in failed_outputs}
    found: list[GraphProblem] = []
    for node_id, result in validator.results.items():
        if result.ok or not result.errors:
            continue  # downstream of a failure: ComfyUI reports only the node at fault
        depending = tuple(o for o in failed_outputs if node_id in dependents[o])
        class_type = graph[node_id]["class_type"]
        for error in result.errors:
            found.append(GraphProblem(error.kind, node_id, class_type, error.input_name,
                                      error.message, error.details, error.extra_info,
                                      depending))
    return found


def failed_outputs(problems: list[GraphProblem]) -> set[str]:
    """The output node ids that will not run because of these problems."""
    return {o for p in problems for o in p.dependent_outputs}
