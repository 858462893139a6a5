"""Admin > People: load the people directory (a CSV upload), download it back."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.responses import RedirectResponse, Response, StreamingResponse

from tokenledger import people as directory_file
from tokenledger.clock import now_us
from tokenledger.export import MEDIA_TYPE
from tokenledger.store.people import directory, directory_summary
from tokenledger.web import flash
from tokenledger.web.admin.common import admin_page
from tokenledger.web.body_limits import MAX_UPLOAD_BYTES
from tokenledger.web.deps import Ctx, PageAdmin, Viewer, client_address

router = APIRouter(prefix="/admin", include_in_schema=False)


def _people_page(request: Request, ctx: Ctx, *, status: int = 200, **values: Any) -> Response:
    return admin_page(
        request,
        ctx,
        "admin/people.html",
        "people",
        status=status,
        summary=directory_summary(ctx.db),
        columns=directory_file.COLUMNS,
        max_mib=MAX_UPLOAD_BYTES // (1024 * 1024),
        **values,
    )


@router.get("/people")
def people_page(request: Request, ctx: Ctx, _admin: PageAdmin) -> Response:
    """The directory's size and the upload form; after an import, what it did."""
    imported = flash.take(request, ctx.db, now_us=now_us(ctx.clock))
    response = _people_page(request, ctx, imported=imported)
    flash.forget(request, response)
    return response


@router.post("/people")
async def people_import(request: Request, ctx: Ctx, admin: PageAdmin) -> Response:
    """Import an uploaded directory (all or nothing), then back to the page
    (post/redirect/get), which says what changed."""
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return _people_page(request, ctx, status=400, error="file: choose a CSV file to import.")
    data = await upload.read()
    filename = upload.filename[:255]
    await form.close()
    return await run_in_threadpool(_import, request, ctx, admin, filename, data)


def _import(request: Request, ctx: Ctx, admin: Viewer, filename: str, data: bytes) -> Response:
    try:
        people = directory_file.parse_upload(data)
    except directory_file.DirectoryError as exc:
        return _people_page(
            request,
            ctx,
            status=400,
            error=f"{filename}: nothing was imported.",
            row_errors=[str(error) for error in exc.errors],
            more_errors=exc.more,
        )
    result = directory_file.import_directory(
        ctx.db,
        people,
        now_us=now_us(ctx.clock),
        actor=admin.email,
        source=filename,
        client=client_address(request),
    )
    response = RedirectResponse("/admin/people", status_code=303)
    message = {
        "file": filename,
        "people": len(people),
        "created": result.created,
        "updated": result.updated,
        "unchanged": result.unchanged,
    }
    flash.put(request, response, ctx.db, message, now_us=now_us(ctx.clock))
    return response


@router.get("/people/directory.csv")
def people_download(ctx: Ctx, _admin: PageAdmin) -> Response:
    """The directory as imported, as ``tokenledger people export`` writes it."""
    return StreamingResponse(
        directory_file.directory_csv(directory(ctx.db)),
        media_type=MEDIA_TYPE,
        headers={"Content-Disposition": 'attachment; filename="people.csv"'},
    )
