"""`nextchar serve`: a small web app that shows a model think -- next-token probabilities as you
type, streamed continuations, the hidden units over the text, and per-token surprise.

One self-contained page (index.html beside this file: no build step, no CDN, works offline)
over a JSON API under /api/ (OpenAPI page at /docs). Models are chosen by their served name,
never by a path from a request; each request carries its own state, so concurrent requests
cannot disturb each other.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from nextchar.core.errors import NextcharError, optional
from nextchar.core.options import flag
from nextchar.serve.limits import (  # noqa: F401  (part of the package's API)
    LOOPBACK_NAMES,
    MAX_BODY,
    MAX_CELL_TEXT,
    MAX_GENERATE,
    MAX_TEXT,
    MAX_TOP,
    Busy,
    Pool,
    valid_text,
)


def _schema_with_names(app: Any, names: list[str]) -> dict[str, Any]:
    """The OpenAPI schema, with the served models' names as the one choice of every `model`
    field: the page at /docs lists them, and generated clients send them."""
    if app.openapi_schema is None:
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(
            title=app.title, version=app.version, summary=app.summary, routes=app.routes
        )
        for component in schema.get("components", {}).get("schemas", {}).values():
            model = component.get("properties", {}).get("model")
            if model is not None and model.get("type") == "string":
                model["enum"] = names
        app.openapi_schema = schema
    return app.openapi_schema


class BodyLimit:
    """ASGI middleware: a body larger than `limit` is a 413 before it is read whole -- by
    its Content-Length when it declares one, else as soon as the bytes received pass it."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers", ())).get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.limit:
            return await self._refuse(send)
        seen, too_large = 0, False

        async def counted() -> Any:
            nonlocal seen, too_large
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:  # stop reading: the app sees a client that went away
                too_large = True
                return {"type": "http.disconnect"}
            return message

        async def guarded(message: Any) -> None:
            if not too_large:  # the app's own answer to a cut body is replaced below
                await send(message)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if not too_large:
                raise
        if too_large:
            await self._refuse(send)

    async def _refuse(self, send: Any) -> None:
        body = f'{{"detail": "the request body is larger than {self.limit:,} bytes"}}'.encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json")]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})


def host_allowed(header: str, allowed: Iterable[str]) -> bool:
    """Whether a request's Host header names this server: a loopback name, an address
    literal (no DNS, so no rebinding), or a name given with allowed_host."""
    if not header:  # HTTP/1.0 without Host: not a browser, nothing to rebind
        return True
    host = header.rsplit(":", 1)[0] if header.count(":") == 1 else header  # drop the port
    if host.startswith("["):  # [::1]:8000
        host = host[1 : host.find("]")] if "]" in host else host
    host = host.lower().rstrip(".")
    if host in LOOPBACK_NAMES or host in {a.lower() for a in allowed}:
        return True
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


@dataclass(frozen=True)
class Served:
    name: str
    model: Any  # nn.Module meeting the LanguageModel interface
    tokenizer: Any
    source: str  # what it was loaded from, shown on the page


def served_names(sources: list[str]) -> list[str]:
    """A short unique name per model: its directory name (run dirs: the run's name), or the
    hub name; repeats get #2, #3."""
    names: list[str] = []
    for source in sources:
        path = Path(source)
        base = path.parent.name if path.name in ("best", "last") else path.name
        base = base.removesuffix(".onnx") or source
        name, n = base, 2
        while name in names:
            name, n = f"{base}#{n}", n + 1
        names.append(name)
    return names


def load_models(sources: list[str], device: str = "auto") -> list[Served]:
    from nextchar.models import load

    if not sources:
        raise NextcharError("give at least one checkpoint to serve")
    served = []
    for name, source in zip(served_names(sources), sources, strict=True):
        model, tokenizer = load(source, device)
        served.append(Served(name, model, tokenizer, source))
    return served


def create_app(models: list[Served], allowed_hosts: Iterable[str] = ()) -> Any:
    """The FastAPI application serving `models`; requests must name this machine in their
    Host header (loopback names, address literals, or one of `allowed_hosts`)."""
    optional("fastapi", "nextchar serve", "serve", "FastAPI")
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import HTMLResponse, JSONResponse

    from nextchar.serve import routes
    from nextchar.serve.docs import docs_page

    app = FastAPI(
        title="nextchar",
        summary="Next-token probabilities, streamed samples, hidden units and surprise",
        version="1",
        docs_url=None,  # FastAPI's page loads Swagger UI from a CDN: blank offline
        redoc_url=None,
    )
    allowed = tuple(allowed_hosts)
    app.add_middleware(BodyLimit, limit=MAX_BODY)

    @app.middleware("http")
    async def check_host(request: Request, call_next: Any) -> Any:
        host = request.headers.get("host", "")
        if not host_allowed(host, allowed):
            return JSONResponse(
                {
                    "detail": f"Host {host[:100]!r} is not this server's name; start "
                    f"nextchar serve with {flag('allowed_host', command_line=True)} NAME to "
                    "accept it"
                },
                status_code=400,
            )
        return await call_next(request)

    @app.exception_handler(RequestValidationError)
    def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        # pydantic's errors echo the whole input (4,000 characters back) and may hold NaN,
        # which JSON cannot carry: say where and what, never the value
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(NextcharError)
    def bad_input(_: Request, exc: NextcharError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    @app.exception_handler(Busy)
    def busy(_: Request, exc: Busy) -> JSONResponse:
        detail = "the server is busy with other requests; try again in a moment"
        return JSONResponse({"detail": detail}, status_code=503, headers={"Retry-After": "1"})

    app.state.models = {m.name: m for m in models}  # what the routes serve, by name
    app.openapi = lambda: _schema_with_names(app, list(app.state.models))
    app.state.pool = Pool()  # the one bounded pool for heavy work
    app.include_router(routes.router)
    page = resources.files(__package__).joinpath("index.html").read_text(encoding="utf-8")

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> str:
        return page

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def docs() -> str:
        return docs_page(app.openapi())

    return app


def serve(
    sources: list[str],
    host: str,
    port: int,
    device: str = "auto",
    allowed_hosts: Iterable[str] = (),
) -> None:
    """Load the models and run the app with uvicorn until Ctrl-C."""
    uvicorn = optional("uvicorn", "nextchar serve", "serve")
    if not 1 <= port <= 65535:
        raise NextcharError(f"{flag('port')} must be in 1..65535, got {port}")
    sock = bind(host, port)  # before loading: a port in use fails first, and fast
    try:
        models = load_models(sources, device)
        app = create_app(models, [host, *allowed_hosts])
        for line in addresses(host, port):
            print(line, flush=True)
        print(f"serving {', '.join(m.name for m in models)}   (Ctrl-C stops)", flush=True)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        server.run(sockets=[sock])
    finally:
        sock.close()


def bind(host: str, port: int) -> socket.socket:
    """A socket bound to host:port, or one line saying why not (port in use, no such host)."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise NextcharError(f"cannot serve on {flag('host', repr(host))}: {exc}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        why = "it is in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise NextcharError(
            f"cannot serve on {host} port {port}: {why}; choose another {flag('port')}"
        ) from None
    sock.set_inheritable(True)
    return sock


def addresses(host: str, port: int) -> list[str]:
    """Where the page is, said plainly: every interface for 0.0.0.0 / ::, else the host."""
    shown = f"[{host}]" if ":" in host else host
    if host in ("0.0.0.0", "::"):
        return [
            f"page: http://{shown}:{port}/ (every network interface: other machines can "
            f"connect, with no login); on this machine: http://127.0.0.1:{port}/",
            f"API:  http://127.0.0.1:{port}/docs",
        ]
    return [f"page: http://{shown}:{port}/", f"API:  http://{shown}:{port}/docs"]
