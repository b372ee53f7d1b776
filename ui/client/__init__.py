"""The HTTP client of the backend (http.py): the only code that talks HTTP to it, shared by
the studio, the CLI, the benchmarks and the tests."""

from ui.client.http import (DEFAULT_BACKEND_URL, DEFAULT_RETRY_BUDGET_S, BackendError,
                            BackendUnreachable, GenerationResult, RylaClient, error_from_response,
                            extension_for, image_data_url, route_for, sniff_content_type)

__all__ = ["DEFAULT_BACKEND_URL", "DEFAULT_RETRY_BUDGET_S", "BackendError", "BackendUnreachable",
           "GenerationResult", "RylaClient", "error_from_response", "extension_for",
           "image_data_url", "route_for", "sniff_content_type"]
