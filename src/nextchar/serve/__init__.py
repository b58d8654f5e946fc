"""`nextchar serve`: a small web app that shows a model think -- next-token probabilities as you
type, streamed continuations, the hidden units over the text, and per-token surprise.

One self-contained page (index.html beside this file: no build step, no CDN, works offline)
over a JSON API under /api/ (OpenAPI page at /docs). Models are chosen by their served name,
never by a path from a request; each request carries its own state, so concurrent requests
cannot disturb each other.
"""

# No `from __future__ import annotations` here: FastAPI reads the request and response
# models from the endpoints' annotations at run time, and they are local to create_app.
import json
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from nextchar.errors import NextcharError

INSTALL_HINT = 'pip install "nextchar[serve]"'

# Request limits: a page on 127.0.0.1 is still a server; long inputs cost seconds of CPU.
MAX_TEXT = 4000  # characters of text to predict from or score
MAX_CELL_TEXT = 1500  # characters stepped one token at a time for the cell view
MAX_GENERATE = 2000  # tokens per continuation
MAX_TOP = 100


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


def create_app(models: list[Served]) -> Any:
    """The FastAPI application serving `models`."""
    try:
        from fastapi import FastAPI, HTTPException, Request
        from fastapi.responses import HTMLResponse, JSONResponse, StreamingResponse
        from pydantic import BaseModel, Field
    except ImportError:
        raise NextcharError(f"nextchar serve needs FastAPI and uvicorn: {INSTALL_HINT}") from None

    from nextchar import cells
    from nextchar.config import SampleConfig
    from nextchar.evaluate import token_surprise
    from nextchar.generate import predict_next, sample_texts
    from nextchar.models import count_parameters, describe

    by_name = {m.name: m for m in models}
    app = FastAPI(
        title="nextchar",
        summary="Next-token probabilities, streamed samples, hidden units and surprise",
        version="1",
    )

    def pick(name: str) -> Served:
        if name not in by_name:
            raise HTTPException(404, f"unknown model {name!r}; served: {', '.join(by_name)}")
        return by_name[name]

    @app.exception_handler(NextcharError)
    def bad_input(_: Request, exc: NextcharError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=400)

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
        model: str
        text: str = Field(min_length=1, max_length=MAX_TEXT)
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
        model: str
        prime: str = Field(min_length=1, max_length=MAX_TEXT)
        length: int = Field(200, ge=1, le=MAX_GENERATE)
        temperature: float = Field(1.0, gt=0, le=10)
        top_k: int | None = Field(None, ge=1)
        top_p: float | None = Field(None, gt=0, le=1)
        greedy: bool = False
        seed: int = 0

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
        model: str
        text: str = Field(min_length=1, max_length=MAX_TEXT)

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
        model: str
        text: str = Field(min_length=1, max_length=MAX_CELL_TEXT)
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
        pattern: str = Field(
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

    return app


def serve(sources: list[str], host: str, port: int, device: str = "auto") -> None:
    """Load the models and run the app with uvicorn until Ctrl-C."""
    try:
        import uvicorn
    except ImportError:
        raise NextcharError(f"nextchar serve needs FastAPI and uvicorn: {INSTALL_HINT}") from None
    models = load_models(sources, device)
    app = create_app(models)
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0") else host
    print(f"serving {', '.join(m.name for m in models)} on http://{shown}:{port}/", flush=True)
    print(f"API: http://{shown}:{port}/docs   (Ctrl-C stops)", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
