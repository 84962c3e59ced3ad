"""The web pages: sign in and out, projects, a project's runs, a run, a step.

Every page and fragment checks the caller's role with the API's own check
(``session.page_access`` -> ``auth.access_of``); a state-changing form also needs the
session's CSRF token and a same-site Origin, and calls the API's own handler, so the
page can do nothing the API would refuse."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.concurrency import run_in_threadpool

from conveyor.domain.states import RunStatus
from conveyor.server import api_runs
from conveyor.server.auth import Access, server
from conveyor.server.db.accounts import role_at_least
from conveyor.server.web import datasets, documents, explore, files, headers, preview, views
from conveyor.server.web import session as sessions
from conveyor.server.web.ansi import AnsiHtml
from conveyor.server.web.local import LOCAL_ROLE, LOCAL_USER, LocalSource
from conveyor.server.web.render import render
from conveyor.server.web.source import RunFilters, RunSource, download, source

router = APIRouter(prefix="/ui", include_in_schema=False)
PAGE = 50
TAIL = 2000  # lines of a log shown first
ARTIFACTS = 200  # output files listed on a run's page
STEPS_SHOWN = 100  # rows of a run's steps table laid out at first; the rest are folded
MAX_FILTER = 200


@router.get("")
@router.get("/")
def home(request: Request) -> Response:
    if sessions.is_local(request):
        return RedirectResponse("/ui/projects", 303)
    if sessions.open_session(request) is None:
        return RedirectResponse("/ui/signin", 303)
    return RedirectResponse("/ui/projects", 303)


@router.get("/signin")
def signin_form(request: Request, next: str = "/ui/projects") -> Response:
    if sessions.is_local(request):  # nobody signs in to `conveyor ui`
        return RedirectResponse(_local(next), 303)
    return render(request, "signin.html", {"next": _local(next), "error": None})


@router.post("/signin")
async def signin(request: Request) -> Response:
    sessions.check_origin(request)
    form = await sessions.form_fields(request)
    token = form.get("token", "").strip()
    state = server(request)
    user = await run_in_threadpool(state.db.accounts.user_for_token, token) if token else None
    if user is None:
        page = {"next": _local(form.get("next", "")), "error": "This API token is not valid."}
        return render(request, "signin.html", page, status_code=401)
    response = RedirectResponse(_local(form.get("next", "")), 303)
    sessions.start_session(request, response, token)
    return response


@router.post("/signout")
async def signout(request: Request) -> Response:
    sessions.check_origin(request)
    session = sessions.open_session(request)  # a revoked token may still sign out
    if session is None:
        raise sessions.SignInNeeded()
    sessions.check_csrf(session, (await sessions.form_fields(request)).get("csrf"))
    response = RedirectResponse("/ui/signin", 303)
    sessions.end_session(response)
    return response


def _local(target: str) -> str:
    """Where to go after signing in: a page of this site only."""
    ok = target.startswith("/ui/") and not target.startswith("//") and "\\" not in target
    return target if ok else "/ui/projects"


@router.get("/projects")
def projects(request: Request) -> HTMLResponse:
    src = source(request)
    if isinstance(src, LocalSource):
        rows = [{"name": src.name, "role": LOCAL_ROLE}]
        return render(request, "projects.html", {"projects": rows, "user": LOCAL_USER})
    session, user = sessions.signed_in(request)
    accounts = server(request).db.accounts
    rows = [{"name": p, "role": accounts.role(user, p)} for p in accounts.visible_projects(user)]
    return render(request, "projects.html", {"projects": rows, "user": user}, session)


@router.get("/p/{project}")
def runs(
    request: Request,
    project: str,
    status: RunStatus | None = None,
    branch: Annotated[str | None, Query(max_length=MAX_FILTER)] = None,
    trigger: Annotated[str | None, Query(max_length=32)] = None,
    pipeline: Annotated[str | None, Query(max_length=MAX_FILTER)] = None,
    after: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    """The project's runs, newest first, a page at a time (keyset: ``after`` a run),
    filtered by what the source can filter (a server's runs by branch, a laptop's by
    pipeline)."""
    session, access = sessions.page_access(request, project, "viewer")
    src = source(request)
    given = {"status": status, "branch": branch, "trigger": trigger, "pipeline": pipeline}
    filters = {k: str(given[k] or "") for k in src.filters}
    chosen = RunFilters(
        status=status if "status" in src.filters else None,
        **{k: v for k, v in filters.items() if k != "status"},
    )
    found, total, next_after = src.page(project, PAGE, chosen, after)
    kept = {k: v for k, v in filters.items() if v}
    more = f"?{urlencode({**kept, 'after': next_after})}" if next_after else None
    context = {
        "project": project,
        "role": access.role,
        "runs": views.run_rows(src.records, src.repo(project), found),
        "total": total,
        "filters": filters,
        "filtered": bool(kept),
        "statuses": [str(s) for s in RunStatus],
        "triggers": views.TRIGGERS,
        "next_page": more,
        "first_page": f"?{urlencode(kept)}" if after else None,
        "deployments_page": not src.local,  # a laptop has none
    }
    return render(request, "runs.html", context, session)


@router.get("/p/{project}/runs/{run_id}")
def run_page(request: Request, project: str, run_id: str) -> HTMLResponse:
    session, access = sessions.page_access(request, project, "viewer")
    src = source(request)
    run = src.get_run(project, run_id)
    plan = src.run_plan(run)
    records = src.records.step_runs(run.id)
    member = role_at_least(access.role, "member")
    lines = views.step_lines(run, plan, records)
    bars, span = views.timeline(records)
    status_of = {line.id: line.status for line in lines}
    files = src.run_files(run, records)
    recorded = src.records.get_run(run.id)
    context = {
        "number": recorded.number if recorded else None,
        "files": files[:ARTIFACTS],
        "files_total": len(files),
        "bars": bars,
        "span": span,
        "max_bars": views.MAX_BARS,
        "project": project,
        "role": access.role,
        "run": run,
        "branch": views.branch_of(run.ref),
        "commit": views.commits_of(src.repo(project), [run]).get(run.commit, {}),
        "commit_url": src.commit_url(run),
        "created": views.when(run.created_at),
        "duration": views.duration(run.started_at, run.ended_at),
        "steps": lines,
        "steps_shown": STEPS_SHOWN,
        "status_of": status_of,
        "job_status": views.job_statuses(status_of),
        "group_status": views.group_statuses(status_of),
        "graph": views.graph(plan),
        "plan_error": plan.error,
        "names": plan.names,
        "error": src.public_text(run.error),
        "can_cancel": member
        and not run.status.finished
        and (run.who == access.user.name or role_at_least(access.role, "lead")),
        "can_rerun": member and run.status.finished,
        "member": member,
        "kind_of": preview.kind_of,
    }
    return render(request, "run.html", context, session)


@router.get("/p/{project}/runs/{run_id}/artifacts/{path:path}")
def artifact(request: Request, project: str, run_id: str, path: str) -> Response:
    """An output file of the run, always as a download (never shown as a page of this
    site): the API's own handler, masked or withheld as there."""
    from urllib.parse import quote

    sessions.page_access(request, project, "viewer")
    response = download(source(request), project, run_id, path)
    name = quote(path.rsplit("/", 1)[-1], safe="")
    response.headers["content-disposition"] = f"attachment; filename*=utf-8''{name}"
    response.headers["content-type"] = "application/octet-stream"
    return response


@router.get("/p/{project}/runs/{run_id}/files")
def files_page(request: Request, project: str, run_id: str) -> HTMLResponse:
    """The run's outputs as a tree of directories (``<details>``: no script needed)."""
    session, access = sessions.page_access(request, project, "viewer")
    src = source(request)
    run = src.get_run(project, run_id)
    found = src.run_files(run)
    context = {
        "project": project,
        "role": access.role,
        "run": run,
        "root": files.tree(found[: files.TREE_FILES]),
        "total": len(found),
        "shown": min(len(found), files.TREE_FILES),
        "kind_of": preview.kind_of,
    }
    return render(request, "files.html", context, session)


@router.get("/p/{project}/runs/{run_id}/preview/{path:path}")
def preview_page(request: Request, project: str, run_id: str, path: str) -> HTMLResponse:
    """One output file shown in the page, bounded: an image or HTML report from the
    sandboxed route, a table, pretty JSON, safe Markdown, a JUnit pass/fail table, text."""
    session, access = sessions.page_access(request, project, "viewer")
    src = source(request)
    run = src.get_run(project, run_id)
    stored, norm, masker = src.artifact(project, run.id, path)
    kind = preview.kind_of(norm)
    context: dict[str, Any] = {
        "project": project,
        "role": access.role,
        "run": run,
        "file": norm,
        "size": stored.stat().st_size,
        "kind": kind,
    }
    if kind == "parquet":
        context["body"] = documents.parquet_preview(stored, masker)
    elif kind not in (None, "image", "html", "notebook"):
        limit = preview.XML_LIMIT if kind == "xml" else preview.READ_LIMIT
        head = files.read_head(stored, masker, limit)
        context |= {"head": head, "body": _preview_body(kind, head)}
        if context["body"].get("kind"):
            context["kind"] = context["body"]["kind"]
    return render(request, "preview.html", context, session)


def _preview_body(kind: str | None, head: files.Head) -> dict[str, Any]:
    if head.withheld:
        return {}
    if kind in ("csv", "tsv"):
        return {"table": preview.table(head.data, "," if kind == "csv" else "\t", head.truncated)}
    if kind == "json":
        text, note = preview.pretty_json(head.data, head.truncated)
        return {"text": text, "note": note}
    if kind == "markdown":
        return {"html": preview.markdown_html(preview.text_of(head.data))}
    if kind == "xml" and not head.truncated and (report := preview.junit(head.data)):
        return {"junit": report}
    text = preview.text_of(head.data[: preview.TEXT_SHOWN])
    return {"kind": "text", "text": text}


@router.get("/p/{project}/runs/{run_id}/raw/{path:path}")
def raw(request: Request, project: str, run_id: str, path: str) -> Response:
    """An image or HTML report with its real type, for the preview's ``<img>`` or
    ``<iframe sandbox>``, under ``Content-Security-Policy: sandbox`` (no script runs,
    and the content has no origin: never this site's); any other file is refused."""
    sessions.page_access(request, project, "viewer")
    media = preview.raw_type(path)
    if media is None:
        raise HTTPException(404, "only images and HTML reports are served for a preview")
    response: Response
    if preview.kind_of(path) == "notebook":  # rendered and sanitised, never the file
        stored, _norm, masker = source(request).artifact(project, run_id, path)
        response = HTMLResponse(documents.notebook_document(stored, masker))
    else:
        response = download(source(request), project, run_id, path)
    if isinstance(response, FileResponse):  # else masked or withheld: stays text/plain
        response.headers["content-type"] = media
    response.headers["content-disposition"] = "inline"
    response.headers["content-security-policy"] = headers.SANDBOX_POLICY
    response.headers["x-frame-options"] = "SAMEORIGIN"
    response.headers["cache-control"] = "no-store"
    return response


@router.get("/p/{project}/compare")
def compare_page(
    request: Request,
    project: str,
    run: Annotated[list[str], Query(max_length=files.MAX_COMPARED)] = [],  # noqa: B006
) -> HTMLResponse:
    """Two or more runs side by side: status, duration, parameters, changed outputs."""
    session, access = sessions.page_access(request, project, "viewer")
    src = source(request)
    found = [src.get_run(project, r[:64]) for r in dict.fromkeys(run)]
    context: dict[str, Any] = {"project": project, "role": access.role, "compared": None}
    if len(found) >= 2:
        durations = [views.duration(r.started_at, r.ended_at) for r in found]
        outputs = [src.run_files(r) for r in found]
        context["compared"] = files.compare(found, outputs, durations)
        context["metrics"] = _metric_rows(src, found)
        context["branches"] = [views.branch_of(r.ref) for r in found]
    return render(request, "compare.html", context, session)


def _metric_rows(src: RunSource, runs: list[Any]) -> list[Any]:
    """The runs' metrics side by side (``conveyor runs compare``'s rows)."""
    from conveyor.sdk.tracking import rows, tracking_of

    return rows([tracking_of(src.records, src.store, r.id, r.params).metrics for r in runs])


@router.get("/p/{project}/runs/{run_id}/live")
def run_live(request: Request, project: str, run_id: str) -> Response:
    """The fragment the run page polls (JSON of statuses)."""
    sessions.page_access(request, project, "viewer")
    src = source(request)
    body = views.live_state(src.records, src.get_run(project, run_id))
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})


@router.post("/p/{project}/runs/{run_id}/cancel")
async def cancel(request: Request, project: str, run_id: str) -> Response:
    _session, access = await _form_access(request, project)
    state = server(request)
    done = await run_in_threadpool(api_runs.cancel_run, access, state, run_id)
    return RedirectResponse(f"/ui/p/{project}/runs/{done['id']}", 303)


@router.post("/p/{project}/runs/{run_id}/rerun")
async def rerun(request: Request, project: str, run_id: str) -> Response:
    _session, access = await _form_access(request, project)
    state = server(request)
    new = await run_in_threadpool(api_runs.resume_run, access, state, run_id)
    return RedirectResponse(f"/ui/p/{project}/runs/{new['id']}", 303)


async def _form_access(request: Request, project: str) -> tuple[sessions.Session, Access]:
    """A member's form: same-site, with the session's CSRF token."""
    sessions.check_origin(request)
    session, access = await run_in_threadpool(sessions.page_access, request, project, "member")
    if session is None:  # a source without sessions is read-only (check_origin says so)
        raise sessions.SignInNeeded()
    sessions.check_csrf(session, (await sessions.form_fields(request)).get("csrf"))
    return session, access


@router.get("/p/{project}/runs/{run_id}/steps/{step_id}")
def step_page(request: Request, project: str, run_id: str, step_id: str) -> HTMLResponse:
    session, access = sessions.page_access(request, project, "viewer")
    src = source(request)
    run = src.get_run(project, run_id)
    record = next((s for s in src.records.step_runs(run.id) if s.step_id == step_id), None)
    if record is None:
        raise HTTPException(404, f"run {run.id} has no record of step {step_id[:200]!r} yet")
    explanation = None
    run_record = src.records.get_run(run.id)
    if run_record is not None:
        from conveyor.sdk.inspect import explain

        explanation = explain(src.records, run_record, record.step_id)
    context = {
        "project": project,
        "role": access.role,
        "run": run,
        "step": record,
        "number": run_record.number if run_record else None,
        "ran_on": views.where_it_ran(src.records.events(run.id), record.step_id),
        "duration": views.duration(record.started_at, record.ended_at),
        "started": views.when(record.started_at),
        "why": explanation,
        "error": src.public_text(record.error),
        "outputs": record.outputs,
        "tail": TAIL,
    }
    return render(request, "step.html", context, session)


@router.get("/p/{project}/runs/{run_id}/steps/{step_id}/log")
async def step_log(
    request: Request,
    project: str,
    run_id: str,
    step_id: str,
    tail: Annotated[int | None, Query(ge=0, le=api_runs.MAX_TAIL)] = None,
) -> StreamingResponse:
    """The step's log as HTML (escaped, ANSI colours as classes), streamed while it runs;
    secrets masked by the API's own log stream."""
    await run_in_threadpool(sessions.page_access, request, project, "viewer")
    src = source(request)
    run = await asyncio.to_thread(src.get_run, project, run_id)
    text = await src.log(run, step_id, tail)

    async def html() -> AsyncIterator[bytes]:
        converter = AnsiHtml()
        async for chunk in text.body_iterator:
            piece = chunk.decode() if isinstance(chunk, bytes) else str(chunk)
            if out := converter.feed(piece):
                yield out.encode()
        if out := converter.feed("", final=True):
            yield out.encode()

    return StreamingResponse(
        html(),
        media_type="text/html; charset=utf-8",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


def routers() -> list[APIRouter]:
    """Every router of the pages: these, and the pages across runs (``explore``)."""
    return [router, explore.router, datasets.router]


def static_files() -> Any:
    """The page's own CSS and scripts, from the package."""
    from fastapi.staticfiles import StaticFiles

    return StaticFiles(packages=[("conveyor.server.web", "static")])
