"""PostHog events of the contract (docs/api.md), sent off the request path.

Only ids, endpoints, timings and error codes are sent: never prompt text or images.
With no POSTHOG_API_KEY, no client is created and nothing touches the network.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from workflows.registry import GENERATION_FAILED, LORA_LOADED, Route

log = logging.getLogger(__name__)

DISTINCT_ID = "ryla-backend"


class _Capturer(Protocol):
    def capture(self, event: str, **kwargs: Any) -> Any: ...
    def shutdown(self) -> None: ...


class Analytics:
    def __init__(self, api_key: str | None, host: str | None = None,
                 client: _Capturer | None = None) -> None:
        self._client: _Capturer | None = client
        if self._client is None and api_key:
            from posthog import Posthog  # imported only when configured

            # Posthog queues events and sends them from its own thread (sync_mode off),
            # so capture() never waits on the network.
            kwargs: dict[str, Any] = {"host": host} if host else {}
            self._client = Posthog(api_key, disable_geoip=True, **kwargs)

    @property
    def enabled(self) -> bool:
        return self._client is not None

    def event(self, name: str, properties: dict[str, Any]) -> None:
        if self._client is None:
            return
        try:
            self._client.capture(name, distinct_id=DISTINCT_ID, properties=properties)
        except Exception:  # analytics must never fail a generation
            log.warning("could not queue analytics event %s", name, exc_info=True)

    def requested(self, route: Route, request_id: str) -> None:
        self.event(route.requested_event, {"request_id": request_id, "endpoint": route.path})

    def completed(self, route: Route, request_id: str, timings: dict[str, float]) -> None:
        self.event(route.completed_event,
                   {"request_id": request_id, "endpoint": route.path, "timings": timings})

    def failed(self, endpoint: str, request_id: str, error_code: str,
               timings: dict[str, float]) -> None:
        self.event(GENERATION_FAILED, {"request_id": request_id, "endpoint": endpoint,
                            "error_code": error_code, "timings": timings})

    def lora_loaded(self, endpoint: str, request_id: str, lora_id: str) -> None:
        self.event(LORA_LOADED, {"request_id": request_id, "endpoint": endpoint,
                                 "lora_id": lora_id})

    def shutdown(self) -> None:
        if self._client is not None:
            self._client.shutdown()
