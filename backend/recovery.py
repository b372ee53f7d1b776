"""Settle the job records that an earlier backend process left "queued" or "running"
(it was killed mid-job), using ComfyUI's own queue and history and the prompt id in each record:

- finished in ComfyUI: its outputs are fetched and saved, the record becomes "succeeded";
- failed in ComfyUI: "failed" with ComfyUI's message;
- still queued or running in ComfyUI: followed (history polled) until it ends, then as above;
- unknown to ComfyUI (never queued, or ComfyUI restarted since): "failed" with the reason.

While ComfyUI is unreachable, the records stay "running" and are tried again every
RETRY_S seconds, for as long as this process lives.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from backend.comfyui_client import ComfyUIClient, history_error
from backend.errors import ApiError, ComfyUIJobFailed, ComfyUIUnavailable
from backend.generation import in_format
from backend.records import JobRecords

log = logging.getLogger(__name__)

RETRY_S = 5.0


class Recovery:
    def __init__(self, records: JobRecords, comfy: ComfyUIClient, retry_s: float = RETRY_S) -> None:
        self.records = records
        self.comfy = comfy
        self.retry_s = retry_s

    async def run(self, left: list[dict[str, Any]]) -> None:
        """Settle `left` (records.left_running() taken before this process served anything)."""
        pending = list(left)
        while pending:
            outcomes = await asyncio.gather(*(self._settle(r) for r in pending))
            pending = [record for record, settled in zip(pending, outcomes) if not settled]
            if pending:
                log.info("%d job record(s) wait for ComfyUI to be reachable", len(pending))
                await asyncio.sleep(self.retry_s)

    async def _settle(self, record: dict[str, Any]) -> bool:
        """True once the record is no longer "running"; False to try again later."""
        request_id = str(record.get("request_id"))
        prompt_id = record.get("prompt_id")
        if not prompt_id:
            await self._fail(request_id, "job_lost", "the backend stopped before this job had a "
                             "ComfyUI prompt id (a record from an older backend); its outcome "
                             "is unknown")
            return True
        try:
            state, entry = await self.comfy.job_state(prompt_id)
            if state in ("queued", "running"):
                log.info("job %s (prompt %s) is still %s in ComfyUI: following it",
                         request_id, prompt_id, state)
                entry = await self.comfy.wait_for(prompt_id)
            elif state == "unknown":
                await self._fail(request_id, "job_lost", (
                    f"ComfyUI has no record of prompt {prompt_id}: the backend stopped before "
                    "queueing it, or ComfyUI restarted since"), prompt_id)
                # a POST /prompt of the dead process could still be on its way
                await self.comfy.cancel(prompt_id)
                return True
            await self._save(request_id, record, prompt_id, entry or {})
        except ComfyUIUnavailable as exc:
            log.info("cannot settle job %s yet: %s", request_id, exc.message)
            return False
        except ApiError as exc:
            await self._fail(request_id, exc.code, exc.message, prompt_id)
        return True

    async def _save(self, request_id: str, record: dict[str, Any], prompt_id: str,
                    entry: dict[str, Any]) -> None:
        status = entry.get("status") if isinstance(entry.get("status"), dict) else {}
        if status.get("status_str") == "error":
            raise ComfyUIJobFailed(f"ComfyUI failed the job: {history_error(entry)}")
        # history keeps the graph: [number, prompt_id, graph, extra, outputs to run]
        prompt = entry.get("prompt")
        graph = prompt[2] if isinstance(prompt, list) and len(prompt) > 2 \
            and isinstance(prompt[2], dict) else {}
        outputs = await self.comfy.fetch_outputs(graph, entry)
        request = record.get("request") if isinstance(record.get("request"), dict) else {}
        outputs = await in_format(outputs, request.get("format"))
        paths = await asyncio.to_thread(self.records.save_outputs, request_id,
                                        [(o.data, o.extension) for o in outputs])
        await asyncio.to_thread(self.records.finish, request_id, status="succeeded",
                                outputs=paths, prompt_id=prompt_id, recovered_at=time.time(),
                                content_types=[o.content_type for o in outputs])
        log.info("job %s: saved %d output(s) that ComfyUI finished after a restart",
                 request_id, len(paths))

    async def _fail(self, request_id: str, code: str, message: str,
                    prompt_id: str | None = None) -> None:
        await asyncio.to_thread(self.records.finish, request_id, status="failed",
                                error={"code": code, "message": message}, prompt_id=prompt_id,
                                recovered_at=time.time())


__all__ = ["Recovery"]
