"""The JSON API under /api/: request and response models (pydantic, validated before any
model runs) and the endpoints, grouped by what they show."""

# No `from __future__ import annotations`: FastAPI reads the request and response models from
# the endpoints' annotations at run time.
import json
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import HTTPException
from fastapi.responses import StreamingResponse
from pydantic import AfterValidator, BaseModel, Field

from nextchar.core.checks import SEED_MAX
from nextchar.core.commands import SampleConfig
from nextchar.inference import cells
from nextchar.inference.evaluate import token_surprise
from nextchar.inference.generate import predict_next, sample_texts
from nextchar.models import count_parameters
from nextchar.models.contract import CELLS
from nextchar.serve.limits import MAX_CELL_TEXT, MAX_GENERATE, MAX_TEXT, MAX_TOP, valid_text

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


class GenerateRequest(BaseModel):
    model: Text
    prime: Text = Field(min_length=1, max_length=MAX_TEXT)
    length: int = Field(200, ge=1, le=MAX_GENERATE)
    temperature: float = Field(1.0, gt=0, le=10, allow_inf_nan=False)
    top_k: int | None = Field(None, ge=1)
    top_p: float | None = Field(None, gt=0, le=1, allow_inf_nan=False)
    greedy: bool = False
    seed: Seed = 0


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


def add_routes(app: Any, models: list[Any]) -> None:
    """Every /api/ endpoint, for `models` (chosen by their served name, never by a path)."""
    by_name = {m.name: m for m in models}

    def pick(name: str) -> Any:
        if name not in by_name:
            raise HTTPException(404, f"unknown model {name!r}; served: {', '.join(by_name)}")
        return by_name[name]

    _model_routes(app, models)
    _text_routes(app, pick)
    _cell_routes(app, pick)


def _model_routes(app: Any, models: list[Any]) -> None:
    @app.get("/api/models")
    def list_models() -> list[ModelInfo]:
        """The served models, in the order given on the command line."""
        out = []
        for m in models:
            model = m.model
            has_cells = CELLS in model.capabilities
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


def _text_routes(app: Any, pick: Callable[[str], Any]) -> None:
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


def _cell_routes(app: Any, pick: Callable[[str], Any]) -> None:
    def _values(m: Any, text: str, layer: int, state: str) -> tuple[Any, int, Any]:
        acts = cells.activations(m.model, m.tokenizer, text)
        layer = layer if layer >= 0 else acts.layers + layer
        return acts, layer, acts.values(state, layer)

    @app.post("/api/activations")
    def activations(req: ActivationsRequest) -> ActivationsResponse:
        """Every unit of one layer's h (or LSTM c, or a gate) after each token of `text`."""
        m = pick(req.model)
        acts, layer, values = _values(m, req.text, req.layer, req.state)
        return ActivationsResponse(
            tokens=acts.tokens,
            layer=layer,
            state=req.state,
            values=[[round(v, 4) for v in row] for row in values.tolist()],
        )

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
