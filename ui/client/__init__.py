"""The HTTP client of the backend (http.py): the only code that talks HTTP to it, shared by
the studio, the CLI, the benchmarks and the tests; and a generation as a backend job
(jobs.py): followed to its result, timed, stopped, with the pace of its steps."""

from ui.client.http import (DEFAULT_BACKEND_URL, DEFAULT_RETRY_BUDGET_S, BackendError,
                            BackendUnreachable, GenerationResult, RylaClient, error_from_response,
                            extension_for, image_data_url, route_for, sniff_content_type)
from ui.client.jobs import (CANCELLED, ENDED, FAILED, FINISHED_ANYWAY, STOP_OUTCOMES, UNKNOWN,
                            StepPace, ask_to_cancel, confirmed_end, follow_job, job_error,
                            job_result, job_timings, stop_outcome, wait_for_ends)

__all__ = ["CANCELLED", "DEFAULT_BACKEND_URL", "DEFAULT_RETRY_BUDGET_S", "ENDED", "FAILED",
           "FINISHED_ANYWAY", "STOP_OUTCOMES", "UNKNOWN", "BackendError", "BackendUnreachable",
           "GenerationResult", "RylaClient", "StepPace", "ask_to_cancel", "confirmed_end",
           "error_from_response", "extension_for", "follow_job", "image_data_url", "job_error",
           "job_result", "job_timings", "route_for", "sniff_content_type", "stop_outcome",
           "wait_for_ends"]
