"""`nextchar serve`: a small web app that shows a model think -- next-token probabilities as you
type, streamed continuations, the hidden units over the text, and per-token surprise.

One self-contained page (index.html beside this file: no build step, no CDN, works offline)
over a JSON API under /api/ (OpenAPI page at /docs). Models are chosen by their served name,
never by a path from a request; each request carries its own state, so concurrent requests
cannot disturb each other.
"""

# No `from __future__ import annotations` here: FastAPI reads the request and response
# models from the endpoints' annotations at run time, and they are local to create_app.
import errno
import ipaddress
import json
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from nextchar.config import SEED_MAX
from nextchar.errors import NextcharError

INSTALL_HINT = 'pip install "nextchar[serve]"'

# Request limits: a page on 127.0.0.1 is still a server; long inputs cost seconds of CPU.
MAX_TEXT = 4000  # characters of text to predict from or score
MAX_CELL_TEXT = 1500  # characters stepped one token at a time for the cell view
MAX_GENERATE = 2000  # tokens per continuation
MAX_TOP = 100
# Names a browser may use for a server on this machine. Any other Host header is refused
# (DNS rebinding: a page from evil.example whose name is made to resolve to 127.0.0.1 would
# otherwise reach a loopback server as if it were the user).
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def valid_text(value: str) -> str:
    """JSON can carry a lone UTF-16 surrogate ("\\ud800"), which is no character and breaks
    every encoder downstream: refuse it as a bad request."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"position {exc.start} holds a lone surrogate (U+{ord(value[exc.start]):04X}), "
            "which is not a character; send valid Unicode text"
        ) from None
    return value


def host_allowed(header: str, allowed: Iterable[str]) -> bool:
    """Whether a request's Host header names this server: a loopback name, an address
    literal (no DNS, so no rebinding), or a name given with --allowed-host."""
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
    from nextchar.checkpoint import load

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
    try:
        from fastapi import FastAPI, HTTPException, Request
        from fastapi.exceptions import RequestValidationError
        from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
        from pydantic import AfterValidator, BaseModel, Field
    except ImportError:
        raise NextcharError(f"nextchar serve needs FastAPI and uvicorn: {INSTALL_HINT}") from None
    from nextchar import cells
    from nextchar.config import SampleConfig
    from nextchar.evaluate import token_surprise
    from nextchar.generate import predict_next, sample_texts
    from nextchar.models import count_parameters, describe
    from nextchar.serve.docs import docs_page

    by_name = {m.name: m for m in models}
    app = FastAPI(
        title="nextchar",
        summary="Next-token probabilities, streamed samples, hidden units and surprise",
        version="1",
        docs_url=None,  # FastAPI's page loads Swagger UI from a CDN: blank offline
        redoc_url=None,
    )
    allowed = tuple(allowed_hosts)

    @app.middleware("http")
    async def check_host(request: Request, call_next: Any) -> Any:
        host = request.headers.get("host", "")
        if not host_allowed(host, allowed):
            return JSONResponse(
                {
                    "detail": f"Host {host[:100]!r} is not this server's name; start "
                    "nextchar serve with --allowed-host NAME to accept it"
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

    def pick(name: str) -> Served:
        if name not in by_name:
            raise HTTPException(404, f"unknown model {name!r}; served: {', '.join(by_name)}")
        return by_name[name]

    @app.exception_handler(NextcharError)
    def bad_input(_: Request, exc: NextcharError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

    Text = Annotated[str, AfterValidator(valid_text)]
    Seed = Annotated[int, Field(ge=0, le=SEED_MAX)]

    class ModelInfo(BaseModel):
        name: str
        description: str
        kind: str
        unit: str
        vocab_size: int
        parameters: int
        layers: int
        units: int
        has_cells: bool
        source: str

    @app.get("/api/models")
    def list_models() -> list[ModelInfo]:
        """The served models, in the order given on the command line."""
        out = []
        for m in models:
            cfg = m.model.config
            recurrent = cfg.kind == "recurrent"
            out.append(
                ModelInfo(
                    name=m.name,
                    description=describe(cfg),
                    kind=cfg.kind,
                    unit=m.tokenizer.unit,
                    vocab_size=m.tokenizer.vocab_size,
                    parameters=count_parameters(m.model),
                    layers=cfg.num_layers if recurrent else cfg.n_layer,
                    units=cfg.hidden_size if recurrent else cfg.n_embd,
                    has_cells=recurrent and hasattr(m.model, "rnn"),
                    source=m.source,
                )
            )
        return out

    class PredictRequest(BaseModel):
        model: Text
        text: Text = Field(min_length=1, max_length=MAX_TEXT)
        k: int = Field(10, ge=1, le=MAX_TOP)

    class Candidate(BaseModel):
        token: str
        p: float

    class PredictResponse(BaseModel):
        candidates: list[Candidate]
        entropy_bits: float
        unit: str

    @app.post("/api/predict")
    def predict(req: PredictRequest) -> PredictResponse:
        """The k most likely next tokens after `text`, and the entropy of the distribution."""
        m = pick(req.model)
        prediction = predict_next(m.model, m.tokenizer, req.text, req.k)
        return PredictResponse(
            candidates=[Candidate(token=t, p=p) for t, p in prediction.candidates],
            entropy_bits=prediction.entropy_bits,
            unit=m.tokenizer.unit,
        )

    class GenerateRequest(BaseModel):
        model: Text
        prime: Text = Field(min_length=1, max_length=MAX_TEXT)
        length: int = Field(200, ge=1, le=MAX_GENERATE)
        temperature: float = Field(1.0, gt=0, le=10, allow_inf_nan=False)
        top_k: int | None = Field(None, ge=1)
        top_p: float | None = Field(None, gt=0, le=1, allow_inf_nan=False)
        greedy: bool = False
        seed: Seed = 0

    @app.post("/api/generate")
    def generate(req: GenerateRequest) -> StreamingResponse:
        """A continuation of `prime`, streamed as server-sent events: `data: {"text": ...}`
        per piece, then `event: done`."""
        m = pick(req.model)
        config = SampleConfig(
            length=req.length,
            temperature=req.temperature,
            top_k=req.top_k,
            top_p=req.top_p,
            greedy=req.greedy,
            seed=req.seed,
        )
        m.tokenizer.encode(req.prime)  # unknown characters: a 400 before the stream starts

        def events() -> Iterator[str]:
            for _, piece in sample_texts(m.model, m.tokenizer, req.prime, config):
                yield f"data: {json.dumps({'text': piece}, ensure_ascii=False)}\n\n"
            yield "event: done\ndata: {}\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    class TextRequest(BaseModel):
        model: Text
        text: Text = Field(min_length=1, max_length=MAX_TEXT)

    class Scored(BaseModel):
        token: str
        bits: float | None  # None for the first token, which is given

    class SurpriseResponse(BaseModel):
        tokens: list[Scored]
        bits_per_char: float | None

    @app.post("/api/surprise")
    def surprise(req: TextRequest) -> SurpriseResponse:
        """-log2 p of each token given the text before it; the sum over the characters after
        the first token is the text's bits per character."""
        m = pick(req.model)
        ids = m.tokenizer.encode(req.text)
        scores = token_surprise(m.model, ids)
        tokens = [m.tokenizer.token_text(i) for i in ids]
        chars = len(m.tokenizer.decode(ids)) - len(m.tokenizer.decode(ids[:1]))
        return SurpriseResponse(
            tokens=[Scored(token=t, bits=b) for t, b in zip(tokens, [None, *scores], strict=True)],
            bits_per_char=sum(scores) / chars if scores and chars > 0 else None,
        )

    class ActivationsRequest(BaseModel):
        model: Text
        text: Text = Field(min_length=1, max_length=MAX_CELL_TEXT)
        layer: int = Field(-1, description="0 = first layer; -1 = last")
        state: Literal["h", "c"] = "h"

    class ActivationsResponse(BaseModel):
        tokens: list[str]
        layer: int
        state: str
        values: list[list[float]]  # [tokens][units]

    def _values(m: Served, text: str, layer: int, state: str) -> tuple[Any, int, Any]:
        acts = cells.activations(m.model, m.tokenizer, text)
        layer = layer if layer >= 0 else acts.h.shape[0] + layer
        return acts, layer, acts.values(state, layer)

    @app.post("/api/activations")
    def activations(req: ActivationsRequest) -> ActivationsResponse:
        """Every unit of one layer's h (or LSTM c) after each token of `text`."""
        m = pick(req.model)
        acts, layer, values = _values(m, req.text, req.layer, req.state)
        return ActivationsResponse(
            tokens=acts.tokens,
            layer=layer,
            state=req.state,
            values=[[round(v, 4) for v in row] for row in values.tolist()],
        )

    class CorrelateRequest(ActivationsRequest):
        pattern: Text = Field(
            "quotes",
            description=f"one of {', '.join(cells.PATTERNS)}, or re:REGEX",
            max_length=200,
        )
        top: int = Field(10, ge=1, le=MAX_TOP)

    class Unit(BaseModel):
        unit: int
        r: float

    @app.post("/api/correlate")
    def correlate(req: CorrelateRequest) -> list[Unit]:
        """The units whose activation follows a pattern of the text most closely (Pearson r)."""
        m = pick(req.model)
        acts, _, values = _values(m, req.text, req.layer, req.state)
        signal = cells.pattern_signal(acts.tokens, req.pattern)
        return [Unit(unit=u, r=r) for u, r in cells.correlate(values, signal, req.top)]

    @app.get("/api/patterns")
    def patterns() -> dict[str, str]:
        """The named patterns for /api/correlate."""
        return {name: label for name, (label, _) in cells.PATTERNS.items()}

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
    try:
        import uvicorn
    except ImportError:
        raise NextcharError(f"nextchar serve needs FastAPI and uvicorn: {INSTALL_HINT}") from None
    if not 1 <= port <= 65535:
        raise NextcharError(f"--port must be in 1..65535, got {port}")
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
        raise NextcharError(f"cannot serve on --host {host!r}: {exc}") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        why = "it is in use" if exc.errno == errno.EADDRINUSE else exc.strerror
        raise NextcharError(
            f"cannot serve on {host} port {port}: {why}; choose another --port"
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
