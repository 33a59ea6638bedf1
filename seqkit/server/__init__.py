"""`seqkit serve MODEL_DIR`: a trained model over HTTP with JSON (a FastAPI app served by uvicorn).

    POST /translate  {"text": ["...", ...], "beam_size": 5, "nbest": 1} (and any of length_penalty,
                     max_length_ratio, shortlist, coverage_penalty, no_repeat_ngram, repetition_penalty;
                     temperature > 0 samples, with top_k, top_p and seed)
                     -> {"translations": [{"text", "score", "nbest": [{"text", "score", "log_prob"}]}, ...]}
    POST /generate   {"prompts": ["...", ...], "max_tokens", "temperature", "top_k", "top_p",
                      "num_samples", "seed"} -> {"texts": [...]}   (num_samples per prompt, in order)
    POST /predict    {"text": ["...", ...], "top_k": 3} -> {"predictions": [{"label", "probabilities",
                     "values"}, ...]}   (a classifier's labels, or a forecaster's values; null: an empty line)
    GET  /health     {"status": "ok", "queued": N, "requests": answered, "batches": decoded}
    GET  /info       what `seqkit info --json` prints
    GET  /docs       the OpenAPI documentation (FastAPI's), with every answer's schema

Every refusal is {"error": one line naming what to change}; FastAPI's 422s and Starlette's 400/404/405 keep
their "detail" beside it.

One worker thread owns the model: requests wait in a bounded queue, and translation requests that are
waiting with the same settings are decoded together, up to `max_batch` lines (dynamic batching), so the
throughput grows with concurrency while the weights never serve two batches at once. Limits: `max_lines`
lines and `max_chars` characters a line per request (413), a full queue (503 with Retry-After), a request
that waits longer than `timeout` seconds (504); bad JSON and wrong types are FastAPI's 422 naming the field.
On SIGTERM uvicorn stops accepting connections, the queued requests are answered, and the process exits 0
(on SIGHUP, 129).
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import errno
import json
import os
import signal
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from seqkit import arguments
from seqkit.api import Model
from seqkit.data.text import line_fault
from seqkit.decoding.inference import TooManyPieces
from seqkit.errors import ConfigError, ModelDirError, SeqkitError
from seqkit.server.body import BodyLimit
from seqkit.server.schemas import (
    REFUSALS,
    GenerateRequest,
    GenerateResponse,
    HealthResponse,
    Hypothesis,
    Prediction,
    PredictRequest,
    PredictResponse,
    TranslateRequest,
    TranslateResponse,
    Translation,
)
from seqkit.server.worker import Limits, Refused, Worker

__all__ = ["Limits", "create_app", "serve"]


def _check_lines(lines: list[str], limits: Limits, what: str) -> None:
    """Each request's own lines, before they join a batch with other requests' (whose lines an error
    of this one's would fail too)."""
    if len(lines) > limits.max_lines:
        raise Refused(413, f"{len(lines)} {what}s in one request, more than --max-lines {limits.max_lines}")
    for number, line in enumerate(lines, start=1):
        if len(line) > limits.max_chars:
            raise Refused(
                413, f"{what} {number} has {len(line)} characters, more than --max-chars {limits.max_chars}"
            )
        fault = line_fault(line)
        if fault:
            raise Refused(422, f"{what} {number} {fault}")


def _at_most(setting: str, asked: float | None, limit: float, own: float, what: str) -> None:
    """A request's `setting` over the server's `limit` is 422, unless the model's `own` value allows it
    (the operator's choice: a request may always ask for what the model does by itself)."""
    bound = max(limit, own)
    if asked is not None and asked > bound:
        raise Refused(422, f"{setting} {asked:g}: more than {bound:g}, {what}")


MAX_LENGTH_RATIO = 4.0  # what a request may ask for as max_length_ratio, or the model's own if more
# model.type -> the endpoint that runs it
ENDPOINTS = {"seq2seq": "/translate", "lm": "/generate", "classifier": "/predict"}
REQUESTS: dict[str, type[BaseModel]] = {
    "/translate": TranslateRequest,
    "/generate": GenerateRequest,
    "/predict": PredictRequest,
}  # endpoint -> what it reads


def _invalid_request(errors: Sequence[Any], fields: list[str], json_body: bool) -> str:
    """One line for FastAPI's list of what a request body got wrong (its first fault; the others
    counted), naming the field and the fix, as every other refusal's `error` does."""
    first, more = errors[0], f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    field = ".".join(str(part) for part in first["loc"][1:])
    if first["type"] == "json_invalid":
        said = first.get("ctx", {}).get("error", "")
        return f"the body is not valid JSON ({said} at character {field}); send one JSON object"
    if not field:  # the body is not an object
        if not json_body:
            return "the body is not JSON: send a JSON object with the header content-type: application/json"
        return f"the body is not a JSON object{more}; send one with the fields {', '.join(fields)}"
    if first["type"] == "extra_forbidden":
        close = difflib.get_close_matches(field, fields, n=1)
        guess = f"did you mean {close[0]}? " if close else ""
        return f"{field}: not a field of this request{more}; {guess}the fields: {', '.join(fields)}"
    if first["type"] == "missing":
        return f"{field}: missing{more}; it is required"
    given = json.dumps(first.get("input"), default=str)  # ("5" is not converted to 5, nor true to 1)
    given = given if len(given) <= 40 else given[:37] + "..."
    return f"{field}: {first['msg'][:1].lower()}{first['msg'][1:]}, not {given}{more}"


def _http_refusal(status: int, method: str, path: str, detail: str, endpoint: str) -> str:
    """One line for Starlette's own refusals (no such path, a method a path does not take, a body that is
    not text), naming what this server answers."""
    if status == 404:
        return f"{path}: no such endpoint; this server answers POST {endpoint}, GET /health, GET /info, GET /docs"
    if status == 405:
        allowed = "POST" if path in ENDPOINTS.values() else "GET"
        return f"{method} {path}: not answered; use {allowed} {path}"
    if detail == "There was an error parsing the body":  # (FastAPI's words for bytes that are not UTF-8)
        return "the body could not be read as text (is it UTF-8?); send one JSON object in UTF-8"
    return detail


# what a model of each type is, for the client that asked another endpoint
SERVED = {"seq2seq": "translates", "lm": "is a language model", "classifier": "is a classifier or forecaster"}


def _require_type(model: Model, endpoint: str) -> None:
    if ENDPOINTS[model.type] != endpoint:
        raise Refused(422, f"{model.model_dir} {SERVED[model.type]}: use POST {ENDPOINTS[model.type]}")


def create_app(model: Model, limits: Limits | None = None) -> FastAPI:
    """The app for `model` (uvicorn runs it; so can any ASGI server or test client)."""
    limits = limits or Limits()
    worker = Worker(limits)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        worker.start()
        yield
        await asyncio.to_thread(worker.stop)  # after uvicorn has answered the requests in flight

    endpoint = ENDPOINTS[model.type]
    app = FastAPI(title="seqkit", summary=f"{model.model_dir}: {model.type}", lifespan=lifespan)
    app.add_middleware(BodyLimit, limit=limits.max_body)

    @app.exception_handler(Refused)
    async def refused(request: Request, error: Refused) -> JSONResponse:
        return JSONResponse({"error": error.message}, status_code=error.status, headers=error.headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        message = _http_refusal(
            error.status_code, request.method, request.url.path, str(error.detail), endpoint
        )
        return JSONResponse(
            {"error": message, "detail": error.detail}, status_code=error.status_code, headers=error.headers
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        # FastAPI's list stays under "detail"; "error" is one line, as in every other refusal
        fields = list(REQUESTS.get(request.url.path, TranslateRequest).model_fields)
        json_body = "json" in request.headers.get("content-type", "")
        message = _invalid_request(error.errors(), fields, json_body)
        return JSONResponse({"error": message, "detail": jsonable_encoder(error.errors())}, status_code=422)

    @app.exception_handler(SeqkitError)
    async def user_error(request: Request, error: SeqkitError) -> JSONResponse:
        if isinstance(error, TooManyPieces):  # a limit (413), which the client meets by splitting the line
            message = (
                f"{error.where} has {error.pieces:,} pieces, more than this model's decode.max_input_pieces = "
                f"{error.limit:,}; split the line (at its sentence ends, say)"
            )
            return JSONResponse({"error": message}, status_code=413)
        # the model directory (a damaged shortlist.npz, say) is the server's fault; a bad setting, the request's
        status = 500 if isinstance(error, ModelDirError) else 422
        return JSONResponse({"error": str(error)}, status_code=status)

    @app.get("/health")
    async def health() -> HealthResponse:
        return HealthResponse(
            status="ok", queued=worker.queued, requests=worker.requests, batches=worker.batches
        )

    @app.get("/info", responses={500: REFUSALS[500]})
    async def info() -> dict:
        try:
            return await asyncio.to_thread(model.info)
        except SeqkitError as e:  # the model directory changed under the server: its fault, not the client's
            raise Refused(500, str(e)) from None

    @app.post("/translate", responses=REFUSALS, include_in_schema=endpoint == "/translate")
    async def translate(request: TranslateRequest) -> TranslateResponse:
        _require_type(model, "/translate")
        _check_lines(request.text, limits, "line")
        settings = model.decode_settings(
            "request",
            # --max-batch bounds the lines decoded together, and not only those of requests put together
            batch_size=min(limits.max_batch, model.config.decode.batch_size),
            beam_size=request.beam_size,
            length_penalty=request.length_penalty,
            max_length_ratio=request.max_length_ratio,
            shortlist=request.shortlist,
            coverage_penalty=request.coverage_penalty,
            no_repeat_ngram=request.no_repeat_ngram,
            repetition_penalty=request.repetition_penalty,
            temperature=request.temperature,
            top_k=request.top_k,
            top_p=request.top_p,
            seed=request.seed,
        )
        # a beam's hypotheses are rows decoded together, as a batch's lines are
        _at_most("beam_size", request.beam_size, limits.max_batch, model.config.decode.beam_size,
                 "the most lines (--max-batch) or hypotheses of a line this server decodes together")  # fmt: skip
        # a model that loops runs to the length limit: at 100 x 1,024 pieces, a search of minutes that a
        # 504 does not stop
        _at_most("max_length_ratio", request.max_length_ratio, MAX_LENGTH_RATIO,
                 model.config.decode.max_length_ratio, "the longest outputs (x source pieces) this server "
                 "searches for")  # fmt: skip
        # (refused here, 422, not by the worker's batch)
        nbest = arguments.checked_nbest(1 if request.nbest is None else request.nbest, settings)

        def run(lines: list[str]) -> list[Any]:
            return list(model.translate_stream(lines, settings, nbest))

        results = await worker.submit(request.text, (settings, nbest), run)
        return TranslateResponse(
            translations=[
                Translation(
                    text=r.text,
                    score=r.score,
                    nbest=[Hypothesis(text=t.text, score=t.score, log_prob=t.log_prob) for t in r.nbest],
                )
                for r in results
            ]
        )

    @app.post("/generate", responses=REFUSALS, include_in_schema=endpoint == "/generate")
    async def generate(request: GenerateRequest) -> GenerateResponse:
        _require_type(model, "/generate")
        _check_lines(request.prompts, limits, "prompt")
        settings = model.generate_settings(
            "request", max_tokens=request.max_tokens, temperature=request.temperature, top_k=request.top_k,
            top_p=request.top_p, num_samples=request.num_samples, seed=request.seed,
        )  # fmt: skip
        texts = len(request.prompts) * settings.num_samples
        if texts > limits.max_lines:  # the lines of the answer, as the lines of a request
            raise Refused(
                413, f"{len(request.prompts)} prompts x num_samples {settings.num_samples} = {texts} texts, "
                f"more than --max-lines {limits.max_lines}",
            )  # fmt: skip
        # a piece has a character at least
        _at_most("max_tokens", request.max_tokens, limits.max_chars, model.config.generate.max_tokens,
                 "the longest line (--max-chars) this server handles")  # fmt: skip

        def run(prompts: list[str]) -> list[Any]:
            return list(model.generate_stream(prompts, settings))

        return GenerateResponse(texts=await worker.submit(request.prompts, None, run))

    @app.post("/predict", responses=REFUSALS, include_in_schema=endpoint == "/predict")
    async def predict(request: PredictRequest) -> PredictResponse:
        _require_type(model, "/predict")
        _check_lines(request.text, limits, "line")
        from seqkit.decoding.classify import check_top_k  # (a classifier's server only)

        encoding = model.tokenizer.encoding  # type: ignore[attr-defined]  # a classifier's is a Codec
        check_top_k(encoding, request.top_k, "top_k", f"top_k = {request.top_k}", model.model_dir)  # 422
        batch_size = min(limits.max_batch, model.config.decode.batch_size)

        def run(lines: list[str]) -> list[Any]:
            return list(model.predict_stream(lines, batch_size))

        answers = await worker.submit(request.text, "predict", run)
        return PredictResponse(predictions=[_prediction(p, request.top_k) for p in answers])

    return app


def _prediction(answer: Any, top_k: int | None) -> Prediction | None:
    """A `seqkit.Prediction` as the answer has it: the probabilities likeliest first (`top_k` of them)."""
    if answer is None:  # an empty line
        return None
    if answer.values is not None:
        return Prediction(label=None, probabilities=None, values=answer.values)
    ranked = answer.top(top_k or len(answer.probabilities))
    return Prediction(label=answer.label, probabilities=dict(ranked), values=None)


def serve(model: Model, host: str, port: int, limits: Limits) -> None:
    """Run the app with uvicorn until SIGTERM or Ctrl-C: its messages and one access-log line per request
    on stderr (stdout stays empty, as for every command), in colour only on a terminal."""
    import copy
    import socket
    import sys

    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as e:  # uvicorn would log it in several lines and exit 1
            raise ConfigError(
                f"--host {host} --port {port}: cannot listen there ({e.strerror}); "
                + ("choose another --port" if e.errno == errno.EADDRINUSE else "check --host and --port")
            ) from None

    logging = copy.deepcopy(LOGGING_CONFIG)
    logging["handlers"]["access"]["stream"] = "ext://sys.stderr"
    for formatter in logging["formatters"].values():
        formatter["use_colors"] = sys.stderr.isatty()
    # uvicorn raises a captured signal again once it has shut down; SIGTERM, the way a service manager
    # stops a server, then finds this handler, and the process exits 0 after draining. Ctrl-C's
    # KeyboardInterrupt reaches the command, which exits 130: through uvicorn.run, which swallows it,
    # the process exited 0
    signal.signal(signal.SIGTERM, lambda number, frame: None)

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self):
            # a closed terminal (SIGHUP) drains the queue as SIGTERM does, then ends the process as the
            # signal's own action does (exit 129 in a shell); its default action dropped the requests
            # being answered. An ignored SIGHUP (nohup) stays ignored.
            hangup = signal.getsignal(signal.SIGHUP) == signal.SIG_DFL
            if hangup:
                signal.signal(signal.SIGHUP, self.handle_exit)
            try:
                with super().capture_signals():  # (which raises the others it caught again as it ends)
                    yield
            finally:
                if hangup:
                    signal.signal(signal.SIGHUP, signal.SIG_DFL)
            if signal.SIGHUP in self._captured_signals:  # (only caught when it was ours to take)
                signal.raise_signal(signal.SIGHUP)

        def handle_exit(self, sig, frame) -> None:
            super().handle_exit(sig, frame)
            if self.force_exit:
                # a second Ctrl-C: now. Left to uvicorn, the requests still running were cancelled as the
                # loop closed, each a traceback on stderr and a 500; and the interpreter's exit around the
                # model's thread, inside a search, aborted (SIGABRT). Their connections are dropped instead.
                from seqkit import console

                console.error("interrupted")
                sys.stderr.flush()
                os._exit(130)

    app = create_app(model, limits)
    server = Server(uvicorn.Config(app, host=host, port=port, log_config=logging, access_log=True))
    server.run()  # (a first Ctrl-C's KeyboardInterrupt, raised once the requests are answered, exits 130)
    if not server.started:  # (uvicorn.run's own rule: a start that failed, logged above, exits 3)
        raise SystemExit(3)
