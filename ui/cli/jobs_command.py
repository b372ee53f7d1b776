"""`ryla jobs`: the backend's jobs: list, show, watch, cancel, fetch their outputs.

Exit codes as the other commands: 0 done (`watch`: the job succeeded), 1 a backend error
or a job that did not succeed, 2 bad usage. Ctrl-C during `watch` or `cancel` stops only
the watching (exit 130); the job goes on.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ui.cli.options import backend_client
from ui.cli.output import emit_json, human_size, output_paths, print_table, write_images
from ui.cli.progress import JobDisplay, wanted
from ui.client import (CANCELLED, ENDED, FINISHED_ANYWAY, BackendError, RylaClient,
                       extension_for, job_error, job_result, stop_outcome)

JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")


def cmd_jobs(args: argparse.Namespace) -> int:
    action = args.action or "list"
    with backend_client(args) as client:
        try:
            return _ACTIONS[action](client, args)
        except BackendError as exc:
            raise _in_cli_words(exc, getattr(args, "job_id", None)) from None


def _in_cli_words(exc: BackendError, job_id: str | None) -> BackendError:
    """The backend's answers name its routes; the CLI's name its commands."""
    if exc.status == 404 and job_id and exc.code != "backend_unreachable":
        return BackendError(404, exc.code, f"the backend has no job {job_id!r}; `ryla jobs` lists them")
    return exc


def _list(client: RylaClient, args: argparse.Namespace) -> int:
    jobs = client.jobs(status=args.status, limit=args.limit)
    if args.json:
        emit_json(jobs)
        return 0
    if not jobs:
        print(f"no {args.status} jobs" if args.status else "no jobs yet")
        return 0
    print_table([_row(job) for job in jobs],
                preferred=("id", "route", "status", "progress", "outputs", "created_at"))
    return 0


def _row(job: dict[str, Any]) -> dict[str, Any]:
    progress = job.get("progress") or {}
    return {"id": job.get("id"), "route": job.get("route"), "status": job.get("status"),
            "progress": f"{float(progress.get('fraction') or 0):.0%}",
            "outputs": len(job.get("outputs") or []), "created_at": job.get("created_at")}


def _show(client: RylaClient, args: argparse.Namespace) -> int:
    job = client.job(args.job_id)
    if args.json:
        emit_json(job)
    else:
        _print_job(job)
    return 0


def _print_job(job: dict[str, Any]) -> None:
    progress = job.get("progress") or {}
    error = job.get("error")
    lines = [("id", job.get("id")), ("route", job.get("route")), ("status", job.get("status")),
             ("created", job.get("created_at")), ("started", job.get("started_at")),
             ("ended", job.get("ended_at")), ("seed", job.get("seed")),
             ("progress", _progress_text(progress)), ("outputs", len(job.get("outputs") or []))]
    if error:
        lines.append(("error", f"{error.get('code')}: {error.get('message')}"))
    for name, value in lines:
        print(f"{name:<9} {'-' if value is None else value}")
    if job.get("status") == "succeeded" and job.get("outputs"):
        print(f"\nsave its outputs with `ryla jobs fetch {job.get('id')}`")
    elif job.get("status") not in ENDED:
        print(f"\nfollow it with `ryla jobs watch {job.get('id')}`")


def _progress_text(progress: dict[str, Any]) -> str:
    text = f"{float(progress.get('fraction') or 0):.0%}"
    if progress.get("step") is not None and progress.get("steps"):
        text += f", step {progress['step']} of {progress['steps']}"
    if progress.get("images_total"):
        text += f", images {progress.get('images_done') or 0} of {progress['images_total']}"
    return text


def _follow(client: RylaClient, job_id: str, as_json: bool) -> dict[str, Any]:
    """The job's events until it ends, with a bar at a terminal; its final object."""
    route = client.job(job_id).get("route") or "job"
    with JobDisplay(wanted(as_json)) as display:
        display.add(job_id, f"{str(route).lstrip('/')} {job_id[:8]}")
        try:
            return client.wait(job_id, on_event=lambda event, data:
                               display.on_event(job_id, event, data))
        except KeyboardInterrupt:
            display.close()
            print(f"stopped watching; job {job_id} goes on (`ryla jobs cancel {job_id}` stops it)",
                  file=sys.stderr)
            raise


def _ended(job: dict[str, Any], as_json: bool) -> int:
    if as_json:
        emit_json(job)
    else:
        _print_job(job)
    return 0 if job.get("status") == "succeeded" else 1


def _watch(client: RylaClient, args: argparse.Namespace) -> int:
    return _ended(_follow(client, args.job_id, args.json), args.json)


def _cancel(client: RylaClient, args: argparse.Namespace) -> int:
    try:
        client.cancel(args.job_id)
    except BackendError as exc:
        if exc.status != 409:
            raise
        job = client.job(args.job_id)
        raise BackendError(409, exc.code, f"job {args.job_id} has already ended "
                                          f"({job.get('status')}); nothing to cancel") from None
    if not args.json:
        print(f"asked the backend to cancel job {args.job_id}; waiting for ComfyUI to confirm…",
              file=sys.stderr)
    job = _follow(client, args.job_id, args.json)
    outcome = stop_outcome(job)
    if args.json:
        emit_json(job)
    elif outcome == CANCELLED:
        print(f"job {args.job_id}: cancelled")
    elif outcome == FINISHED_ANYWAY:
        print(f"job {args.job_id}: finished before the cancel reached it; its outputs are kept: "
              f"`ryla jobs fetch {args.job_id}`")
    else:
        print(f"job {args.job_id}: {job.get('status')}: {job_error(job)}")
    return 0 if outcome in (CANCELLED, FINISHED_ANYWAY) else 1


def _fetch(client: RylaClient, args: argparse.Namespace) -> int:
    job = client.job(args.job_id)
    status = job.get("status")
    if status != "succeeded":
        hint = (f"`ryla jobs watch {args.job_id}` follows it" if status not in ENDED
                else "it has no outputs")
        raise BackendError(409, "job_not_succeeded", f"job {args.job_id} is {status}; {hint}")
    result = job_result(client, job)
    paths = output_paths(f"job-{args.job_id[:8]}", args.output, len(result.images),
                         extension_for(result.content_type))
    write_images(result, paths)
    if args.json:
        emit_json({"id": job["id"], "route": job.get("route"), "files": [str(p) for p in paths],
                   "content_type": result.content_type, "bytes": [len(i) for i in result.images],
                   "seed": result.seed})
    else:
        for path, data in zip(paths, result.images):
            print(f"saved {path} ({result.content_type}, {human_size(len(data))})")
    return 0


_ACTIONS = {"list": _list, "show": _show, "watch": _watch, "cancel": _cancel, "fetch": _fetch}
