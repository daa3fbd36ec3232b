"""The HTTP contract of `nst serve` (docs/serve.md): submit, watch, fetch and cancel transfers, on FastAPI."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import shutil
import sqlite3
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from .config import ServeConfig
from .events import Hub, frame
from .guards import BodyTooLarge, TokenGuard, UploadLimit
from .intake import FORMATS, Refused, check_content_sides, check_decodes, check_header, parse_options, resolve
from .messages import clip
from .metrics import Metrics
from .store import RESULT, TERMINAL, Job, disk_full, open_data, valid_id, write_file
from .workers import Pool, QueueFull

STATIC = Path(__file__).resolve().parent / "static"
FIELDS = ("content", "style", "options")
FORM = "multipart/form-data with content, style and options fields"
LOST = "the result of this transfer is lost (its file is damaged or gone); submit it again"
MEDIA = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}
KEEPALIVE_SECONDS = 15
RESULT_ROOM = 64 << 20  # room for a result and its record beyond the largest upload
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the empty IEND chunk every PNG ends with
log = logging.getLogger("nst.serve")


class Server:
    """The state behind the routes: settings, the job store, the worker pool, events and counters."""

    def __init__(self, config: ServeConfig) -> None:
        from nst.engine.graphs.vgg import load_spec

        self.config = config.checked()
        self.lock, self.store = open_data(config.data)  # refused in one line while another server holds it
        self.stopping = False  # set when the process is asked to stop: open event streams end
        self.hub, self.metrics = Hub(), Metrics()
        self.pool = Pool(config, self.store, self.hub, self.metrics)
        self.relu_names = load_spec(None).relu_names
        self.decoding = asyncio.Semaphore(max(1, config.workers))  # uploads decoded at once (bounds memory)

    def job(self, job_id: str) -> Job:
        job = self.pool.jobs.get(job_id) if valid_id(job_id) else None
        if job is None:
            raise Refused(404, f"no transfer {job_id[:40]!r} here (finished ones expire after a while)")
        return job

    def storage_problem(self) -> str | None:
        """None while the data folder can take another job; otherwise why not, in one line (no path)."""
        store = self.store
        moved = store.database_problem()
        if moved is not None:
            return moved
        if not all(os.access(d, os.W_OK | os.X_OK) for d in (store.jobs_dir, store.incoming)):
            return "the server cannot use its data folder"
        try:
            free = shutil.disk_usage(store.root).free
        except OSError:
            return "the server cannot use its data folder"
        if free < self.config.max_upload_mb * 2**20 + RESULT_ROOM:
            return "the server's disk is full"
        return None

    def retry_after(self) -> int:
        """Seconds until a queue place is likely free: a job's mean run time shared between the workers."""
        return int(min(3600, max(1, math.ceil(self.metrics.mean_job_seconds() / self.config.workers))))

    async def submit(self, request: Request) -> dict:
        """Check a POST /v1/transfers completely, then store it durably and queue it."""
        problem = self.pool.health() or await run_in_threadpool(self.store.database_problem)
        if problem is not None:  # a job accepted now would wait for a worker that cannot come, or be lost
            raise Refused(503, f"this server cannot run transfers now: {problem}")
        try:
            with self.pool.place():  # decided before the body is read, and atomically
                return await self._receive(request)
        except QueueFull:
            raise Refused(
                429,
                f"the queue is full ({self.pool.queued} jobs waiting, {self.pool.uploading} being uploaded); "
                "retry later",
                {"Retry-After": str(self.retry_after())},
            ) from None

    async def _receive(self, request: Request) -> dict:
        seconds = self.config.upload_seconds
        try:
            form = await asyncio.wait_for(  # a stalled upload must not hold its queue place for ever
                request.form(max_files=self.config.max_styles + 1, max_fields=len(FIELDS)), seconds
            )
        except asyncio.TimeoutError:
            raise Refused(408, f"the upload did not arrive within {seconds:g} s; send it again") from None
        except BodyTooLarge as exc:
            raise Refused(413, str(exc)) from None
        except HTTPException as exc:  # the form parser's own refusals
            if "Too many files" in str(exc.detail):
                raise self._too_many_styles(f"more than {self.config.max_styles}") from None
            raise Refused(422, f"the form could not be read ({clip(str(exc.detail))}); send {FORM}") from None
        except Exception:
            raise Refused(422, f"send {FORM}") from None
        try:
            return await self._accept(form)
        finally:
            await form.close()

    def _too_many_styles(self, count: str) -> Refused:
        return Refused(422, f"style: {count} images; this server takes at most {self.config.max_styles} styles")

    async def _accept(self, form) -> dict:
        unknown = sorted(set(form.keys()) - set(FIELDS))
        if unknown:
            raise Refused(422, f"unknown field {unknown[0]!r}; send content (one file), style (files), options")
        contents, styles = form.getlist("content"), form.getlist("style")
        if len(contents) != 1 or not isinstance(contents[0], UploadFile):
            raise Refused(422, "content: send exactly one image file")
        if not styles or not all(isinstance(s, UploadFile) for s in styles):
            raise Refused(422, "style: send one or more image files")
        if len(styles) > self.config.max_styles:
            raise self._too_many_styles(str(len(styles)))
        if len(form.getlist("options")) > 1:
            raise Refused(422, "options: sent twice; send one options field")
        options = form.get("options")
        if isinstance(options, UploadFile):
            options = (await options.read()).decode("utf-8", "replace")
        client = parse_options(options)
        opts, _ = resolve(client, len(styles), self.relu_names, self.config)
        uploads = {"content": await contents[0].read()}
        uploads.update({f"style{i + 1}": await s.read() for i, s in enumerate(styles)})
        labels = {name: "content image" if name == "content" else f"style image {name[5:]}" for name in uploads}
        sides = {name: check_header(data, labels[name], self.config.max_megapixels) for name, data in uploads.items()}
        check_content_sides(*sides["content"], opts.size, self.config.max_size)
        job_id, staged = self.store.staging()
        try:
            for name, data in uploads.items():
                await run_in_threadpool(write_file, staged / name, data)
            async with self.decoding:
                for name in uploads:
                    await run_in_threadpool(check_decodes, staged / name, labels[name])
            job = Job(id=job_id, options=client, content="content", styles=[n for n in uploads if n != "content"])
            await run_in_threadpool(self.store.accept, job, staged)
        except BaseException:
            shutil.rmtree(staged, ignore_errors=True)
            raise
        self.pool.submit(job)
        self.metrics.accept()
        return {"id": job.id, "status": job.status}

    async def events(self, job: Job):
        """The job's server-sent events: its state now, then progress and previews, then the final state."""
        queue = self.hub.subscribe(job.id)
        try:
            yield frame("progress", self.pool.status(job))
            idle = 0.0
            while job.status not in TERMINAL and not self.stopping:
                try:
                    event, data = await asyncio.wait_for(queue.get(), 1.0)
                except asyncio.TimeoutError:
                    idle += 1.0
                    if idle >= KEEPALIVE_SECONDS:
                        idle = 0.0
                        yield ": keep-alive\n\n"
                    continue
                if event in TERMINAL:
                    break
                yield frame(event, data)
            if job.status in TERMINAL:  # else the server is stopping: the job resumes at its next start
                yield frame(job.status, self.pool.status(job))
        finally:
            self.hub.unsubscribe(job.id, queue)

    async def result(self, job: Job, fmt: str | None) -> Response:
        if job.status in TERMINAL and job.status != "done":
            raise Refused(409, f"the transfer is {job.status}; it has no result (submit it again)")
        if job.status != "done":
            raise Refused(409, f"the transfer is {job.status}; its result is ready when the status is done")
        fmt = fmt or job.options.get("format", "png")
        if fmt not in FORMATS:
            raise Refused(422, f"format {fmt!r}: use one of {', '.join(FORMATS)}")
        path = self.store.folder(job.id) / RESULT
        if not await run_in_threadpool(_looks_whole, path):
            raise Refused(410, LOST)
        headers = {"Content-Disposition": f'attachment; filename="nst-{job.id[:8]}.{fmt}"'}
        if fmt == "png":
            return FileResponse(path, media_type=MEDIA[fmt], headers=headers)
        return Response(await run_in_threadpool(_encode, path, fmt), media_type=MEDIA[fmt], headers=headers)

    def delete(self, job: Job) -> dict:
        """Cancel a queued or running job (its images are removed); a finished job is removed whole, once its
        run has stopped (a second DELETE while a cancelled run stops answers the same and removes nothing)."""
        if job.status in TERMINAL:
            self.pool.forget(job)
        else:
            self.pool.cancel(job)
        return {"id": job.id, "status": job.status}

    async def sweep(self) -> None:
        """Remove expired jobs now and then, for as long as the server runs."""
        every = min(60.0, self.config.keep_hours * 3600 / 4)
        while True:
            await asyncio.sleep(every)
            try:
                await run_in_threadpool(self.pool.expire)
            except (OSError, sqlite3.Error) as exc:  # the disk refused: the next round tries again
                log.warning("removing expired jobs failed: %s", exc)


def _encode(path: Path, fmt: str) -> bytes:
    import cv2

    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise Refused(410, LOST)
    return cv2.imencode(f".{fmt}", image, [])[1].tobytes()


def _looks_whole(path: Path) -> bool:
    """Whether a result file is there, starts as a PNG and ends with its IEND chunk (a cut file does not);
    a full check would decode it for every download."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(PNG_SIGNATURE))
            fh.seek(0, 2)
            if fh.tell() < len(PNG_SIGNATURE) + len(PNG_END):
                return False
            fh.seek(-len(PNG_END), 2)
            return head == PNG_SIGNATURE and fh.read() == PNG_END
    except OSError:
        return False


def _routes(app: FastAPI, server: Server) -> None:
    @app.exception_handler(Refused)
    async def refused(request: Request, exc: Refused) -> JSONResponse:
        server.metrics.refuse(exc.status)
        return JSONResponse({"error": clip(exc.reason)}, exc.status, exc.headers)

    @app.exception_handler(HTTPException)
    async def no_route(request: Request, exc: HTTPException) -> JSONResponse:
        """Routing's refusals (404, 405) in the API's own shape."""
        reason = {404: "no such route here; the API is under /v1/transfers (docs/serve.md)"}.get(
            exc.status_code, clip(str(exc.detail))
        )
        said = Refused(exc.status_code, f"{request.method} {request.url.path[:80]}: {reason}", dict(exc.headers or {}))
        return await refused(request, said)  # with Starlette's headers (a 405's Allow)

    @app.exception_handler(OSError)
    @app.exception_handler(sqlite3.Error)
    async def storage(request: Request, exc: Exception) -> JSONResponse:
        """The server's own disk failed (full, read-only, gone): a JSON answer and one log line, no traceback."""
        log.warning("%s %s: the data folder failed: %s", request.method, request.url.path, exc)
        if disk_full(exc):
            return await refused(request, Refused(507, "the server's disk is full; retry later"))
        return await refused(request, Refused(503, "the server cannot use its data folder now; retry later"))

    @app.api_route("/", methods=["GET", "HEAD"], include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.post("/v1/transfers", status_code=202)
    async def submit(request: Request) -> dict:
        return await server.submit(request)

    @app.api_route("/v1/transfers/{job_id}", methods=["GET", "HEAD"])
    async def status(job_id: str) -> dict:
        return server.pool.status(server.job(job_id))

    @app.get("/v1/transfers/{job_id}/events")
    async def events(job_id: str) -> StreamingResponse:
        return StreamingResponse(
            server.events(server.job(job_id)),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.api_route("/v1/transfers/{job_id}/result", methods=["GET", "HEAD"])
    async def result(job_id: str, format: str | None = None) -> Response:
        return await server.result(server.job(job_id), format)

    @app.delete("/v1/transfers/{job_id}")
    async def delete(job_id: str) -> dict:
        return await run_in_threadpool(server.delete, server.job(job_id))

    @app.api_route("/healthz", methods=["GET", "HEAD"])
    async def healthz() -> JSONResponse:
        """200 while the server can take and run jobs; 503 with the reason when no worker can or its data
        folder cannot hold another upload."""
        problem = server.pool.health() or await run_in_threadpool(server.storage_problem)
        body = {"status": "ok" if problem is None else "failing", "queued": server.pool.queued}
        body |= {"uploading": server.pool.uploading, "running": len(server.pool.running)}
        body |= {"set_aside": len(server.store.set_aside)}
        return JSONResponse(body if problem is None else body | {"error": problem}, 200 if problem is None else 503)

    @app.api_route("/metrics", methods=["GET", "HEAD"])
    async def metrics() -> PlainTextResponse:
        text = server.metrics.render(server.pool.queued, len(server.pool.running), server.config.workers)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")


def create_app(config: ServeConfig | None = None, **settings) -> FastAPI:
    """The ASGI app of `nst serve`; settings are ServeConfig's fields (data, token, workers, limits)."""
    config = config or ServeConfig(**settings)
    server = Server(config)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        server.hub.bind(asyncio.get_running_loop())
        await run_in_threadpool(server.pool.start)
        sweeper = asyncio.create_task(server.sweep())
        try:
            yield
        finally:
            sweeper.cancel()
            await run_in_threadpool(server.pool.close)
            server.store.close()
            server.lock.release()

    app = FastAPI(title="nst", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.router.redirect_slashes = False  # a trailing slash is a 404 in the API's shape, not a redirect
    app.state.server = server
    _routes(app, server)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_middleware(UploadLimit, limit=int(config.max_upload_mb * 2**20), on_refuse=server.metrics.refuse)
    app.add_middleware(TokenGuard, token=config.token, on_refuse=server.metrics.refuse)
    return app
