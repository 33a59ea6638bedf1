"""What `seqkit serve`'s requests and answers are: pydantic models, which FastAPI checks requests
against and documents at /docs (a client generator reads /openapi.json)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class TranslateRequest(BaseModel):
    # a misspelt setting is an error, not the default; and a value of another JSON type ("5", true for a
    # number, "yes" for true) is an error, not converted: true was a beam size of 1
    model_config = ConfigDict(extra="forbid", strict=True)

    text: list[str]
    beam_size: int | None = Field(None, description="the model's decode.beam_size when not given")
    nbest: int | None = Field(None, description="1 when not given (null too, as for every setting)")
    length_penalty: float | None = None
    max_length_ratio: float | None = None
    shortlist: bool | None = Field(None, description="the model's decode.shortlist when not given")
    coverage_penalty: float | None = None
    no_repeat_ngram: int | None = None
    repetition_penalty: float | None = None
    temperature: float | None = Field(None, description="> 0: sample each output (0: search)")
    top_k: int | None = None
    top_p: float | None = None
    seed: int | None = None


class GenerateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    prompts: list[str] = [""]
    max_tokens: int | None = None
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    num_samples: int | None = None
    seed: int | None = None


class Hypothesis(BaseModel):
    text: str
    score: float = Field(description="log_prob over the length penalty: what the search ranks by")
    log_prob: float = Field(description="the hypothesis' log-probability (nats), EOS included")


class Translation(BaseModel):
    text: str = Field(description="the best hypothesis' text (nbest[0]); an empty line's is empty")
    score: float | None = Field(description="the best hypothesis' score; null for an empty line")
    nbest: list[Hypothesis] = Field(description="the nbest hypotheses, best first; none for an empty line")


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    text: list[str] = Field(description="a text, or a forecaster's numbers x1,x2,... per line")
    top_k: int | None = Field(None, description="the k likeliest labels' probabilities (all when not given)")


class TranslateResponse(BaseModel):
    translations: list[Translation] = Field(description="one per line of the request, in order")


class GenerateResponse(BaseModel):
    texts: list[str] = Field(
        description="num_samples texts per prompt (each the prompt and its continuation)"
    )


class Prediction(BaseModel):
    label: str | None = Field(description="the likeliest label; null for a forecaster")
    probabilities: dict[str, float] | None = Field(
        description="label -> probability, likeliest first (top_k of them if asked); null for a forecaster"
    )
    values: list[float] | None = Field(description="a forecaster's values, in the targets' units")


class PredictResponse(BaseModel):
    predictions: list[Prediction | None] = Field(description="one per line, in order; null for an empty line")


class HealthResponse(BaseModel):
    status: str
    queued: int = Field(description="requests waiting for the model")
    requests: int = Field(description="requests answered")
    batches: int = Field(description="batches decoded")


class ErrorResponse(BaseModel):
    error: str = Field(description="one line: what was refused and what to change")
    detail: Any = Field(None, description="FastAPI's and Starlette's own, where they refused")


# what a refusal's body is, in the OpenAPI documentation (a 422 replaces FastAPI's own schema)
REFUSALS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "a body that could not be read as text (not UTF-8)",
        413: "too many lines, or a line too long (--max-lines, --max-chars, decode.max_input_pieces)",
        422: "a field or setting that is wrong: the error names it",
        503: "the queue is full (--max-queue): retry after Retry-After seconds",
        504: "not answered within --timeout seconds",
        500: "the model directory changed or is damaged: the server's fault",
    }.items()
}
