"""The JSON API under /api/: one module-level router whose endpoints read the served models
from the app (`app.state.models`), and their request and response models (pydantic,
validated before any model runs). A request's sampling options are SampleConfig's own fields
(core/commands.py): the same types and bounds as the command line's and the notebook's, with
the server's tighter caps on top (a page on 127.0.0.1 is still a server)."""

# No `from __future__ import annotations`: FastAPI reads the request and response models from
# the endpoints' annotations at run time.
import dataclasses
import json
import typing
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import StreamingResponse
from pydantic import AfterValidator, BaseModel, Field, create_model

from nextchar.core.commands import SampleConfig
from nextchar.inference import cells
from nextchar.inference.evaluate import token_surprise
from nextchar.inference.generate import predict_next, sample_texts
from nextchar.models import count_parameters
from nextchar.models.contract import CELL_VIEW
from nextchar.serve.limits import MAX_CELL_TEXT, MAX_GENERATE, MAX_TEXT, MAX_TOP, valid_text

router = APIRouter(prefix="/api")

Text = Annotated[str, AfterValidator(valid_text)]


def option_field(cls: type, name: str, **server: Any) -> tuple[Any, Any]:
    """A request field from an option field of `cls`: its type, default, help and bounds
    (`server` tightens them: le=2000, or another default)."""
    option = {f.name: f for f in dataclasses.fields(cls)}[name]
    hint, meta = typing.get_type_hints(cls)[name], option.metadata
    spec: dict[str, Any] = {"default": option.default, "description": meta.get("help")}
    for bound, key in (("low", "ge"), ("high", "le"), ("above", "gt"), ("below", "lt")):
        if meta.get(bound) is not None:
            spec[key] = meta[bound]
    if float in (hint, *typing.get_args(hint)):
        spec["allow_inf_nan"] = False  # NaN passes every comparison
    spec.update(server)
    return hint, Field(**spec)


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
    states: dict[str, str] = Field(description="what the cell view can show: name -> label")
    source: str


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


# What a request may ask of sample(): SampleConfig's fields, capped for a shared server.
SAMPLING = ("length", "temperature", "top_k", "top_p", "greedy", "seed")
GenerateRequest = create_model(
    "GenerateRequest",
    model=(Text, ...),
    prime=(Text, Field(min_length=1, max_length=MAX_TEXT)),
    length=option_field(SampleConfig, "length", default=200, ge=1, le=MAX_GENERATE),
    temperature=option_field(SampleConfig, "temperature", le=10),
    top_k=option_field(SampleConfig, "top_k", le=MAX_TOP),
    top_p=option_field(SampleConfig, "top_p"),
    greedy=option_field(SampleConfig, "greedy"),
    seed=option_field(SampleConfig, "seed"),
)


class TextRequest(BaseModel):
    model: Text
    text: Text = Field(min_length=1, max_length=MAX_TEXT)


class Scored(BaseModel):
    token: str
    bits: float | None  # None for the first token, which is given


class SurpriseResponse(BaseModel):
    tokens: list[Scored]
    bits_per_char: float | None


class ActivationsRequest(BaseModel):
    model: Text
    text: Text = Field(min_length=1, max_length=MAX_CELL_TEXT)
    layer: int = Field(-1, description="0 = first layer; -1 = last")
    state: str = Field("h", max_length=20, description="h, c (LSTM) or a gate name")


class ActivationsResponse(BaseModel):
    tokens: list[str]
    layer: int
    state: str
    values: list[list[float]]  # [tokens][units]


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


def pick(request: Request, name: str) -> Any:
    """A served model by its name (never by a path)."""
    models = request.app.state.models
    if name not in models:
        raise HTTPException(404, f"unknown model {name!r}; served: {', '.join(models)}")
    return models[name]


def heavy(request: Request) -> Any:
    """A slot of the app's bounded pool for work that runs a model over a text (limits.Pool):
    a 503 with Retry-After when every slot is taken."""
    return request.app.state.pool.slot()


@router.get("/models")
def list_models(request: Request) -> list[ModelInfo]:
    """The served models, in the order given on the command line."""
    out = []
    for m in request.app.state.models.values():
        model = m.model
        has_cells = CELL_VIEW in model.capabilities
        out.append(
            ModelInfo(
                name=m.name,
                description=model.describe(),
                kind=model.config.kind,
                unit=m.tokenizer.unit,
                vocab_size=m.tokenizer.vocab_size,
                parameters=count_parameters(model),
                layers=model.layers,
                units=model.units,
                has_cells=has_cells,
                states=model.state_labels() if has_cells else {},
                source=m.source,
            )
        )
    return out


@router.post("/predict")
def predict(request: Request, req: PredictRequest) -> PredictResponse:
    """The k most likely next tokens after `text`, and the entropy of the distribution."""
    m = pick(request, req.model)
    with heavy(request):
        prediction = predict_next(m.model, m.tokenizer, req.text, req.k)
    return PredictResponse(
        candidates=[Candidate(token=t, p=p) for t, p in prediction.candidates],
        entropy_bits=prediction.entropy_bits,
        unit=m.tokenizer.unit,
    )


@router.post("/generate")
def generate(request: Request, req: GenerateRequest) -> StreamingResponse:  # type: ignore[valid-type]
    """A continuation of `prime`, streamed as server-sent events: `data: {"text": ...}` per
    piece, then `event: done`."""
    m = pick(request, req.model)
    config = SampleConfig(**req.model_dump(include=set(SAMPLING)))
    m.tokenizer.encode(req.prime)  # unknown characters: a 400 before the stream starts
    slot = heavy(request)
    slot.__enter__()  # a 503 now, not mid-stream; held until the stream is sent or dropped

    def events() -> Iterator[str]:
        for _, piece in sample_texts(m.model, m.tokenizer, req.prime, config):
            yield f"data: {json.dumps({'text': piece}, ensure_ascii=False)}\n\n"
        yield "event: done\ndata: {}\n\n"

    return HeldStream(events(), slot, media_type="text/event-stream")


class HeldStream(StreamingResponse):
    """A streamed response that holds a pool slot until it has been sent, or the client went
    away (the release is in `__call__`'s finally: it runs however the stream ends)."""

    def __init__(self, content: Iterator[str], slot: Any, **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self.slot = slot

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.slot.__exit__(None, None, None)


@router.post("/surprise")
def surprise(request: Request, req: TextRequest) -> SurpriseResponse:
    """-log2 p of each token given the text before it; the sum over the characters after the
    first token is the text's bits per character."""
    m = pick(request, req.model)
    ids = m.tokenizer.encode(req.text)
    with heavy(request):
        scores = token_surprise(m.model, ids)
    tokens = [m.tokenizer.token_text(i) for i in ids]
    chars = len(m.tokenizer.decode(ids)) - len(m.tokenizer.decode(ids[:1]))
    return SurpriseResponse(
        tokens=[Scored(token=t, bits=b) for t, b in zip(tokens, [None, *scores], strict=True)],
        bits_per_char=sum(scores) / chars if scores and chars > 0 else None,
    )


def _values(m: Any, text: str, layer: int, state: str) -> tuple[Any, int, Any]:
    acts = cells.activations(m.model, m.tokenizer, text)
    layer = layer if layer >= 0 else acts.layers + layer
    return acts, layer, acts.values(state, layer)


@router.post("/activations")
def activations(request: Request, req: ActivationsRequest) -> ActivationsResponse:
    """Every unit of one layer's h (or LSTM c, or a gate) after each token of `text`."""
    m = pick(request, req.model)
    with heavy(request):
        acts, layer, values = _values(m, req.text, req.layer, req.state)
    return ActivationsResponse(
        tokens=acts.tokens,
        layer=layer,
        state=req.state,
        values=[[round(v, 4) for v in row] for row in values.tolist()],
    )


@router.post("/correlate")
def correlate(request: Request, req: CorrelateRequest) -> list[Unit]:
    """The units whose activation follows a pattern of the text most closely (Pearson r)."""
    m = pick(request, req.model)
    with heavy(request):
        acts, _, values = _values(m, req.text, req.layer, req.state)
        signal = cells.pattern_signal(acts.tokens, req.pattern)
    return [Unit(unit=u, r=r) for u, r in cells.correlate(values, signal, req.top)]


@router.get("/patterns")
def patterns() -> dict[str, str]:
    """The named patterns for /api/correlate."""
    return {name: label for name, (label, _) in cells.PATTERNS.items()}
