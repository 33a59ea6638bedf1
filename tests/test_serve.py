"""`seqkit serve`: a real server on 127.0.0.1 (a free port) and a real HTTP client. It answers what the
commands print, each request gets its own lines back in order under concurrency (decoded in shared
batches), every limit has its status, and SIGTERM drains the queue before the process exits 0."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
import uvicorn

import seqkit
from seqkit import server
from seqkit.data.text import read_lines
from seqkit.server.body import BodyLimit
from tests.helpers import assert_one_line_error, free_port, seqkit_here


@contextlib.contextmanager
def _serving(model_dir, model=None, **limits):
    """A server for `model_dir` (or the loaded `model`) in a thread of this process, stopped when the
    block ends."""
    port = free_port()
    model = model if model is not None else seqkit.load(model_dir, device="cpu")
    app = server.create_app(model, server.Limits(**limits))
    running = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not running.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.02)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            yield client
    finally:
        running.should_exit = True
        thread.join(timeout=60)


@pytest.fixture(scope="module")
def translator(reverse_model):
    with _serving(reverse_model) as client:
        yield client


def test_translations_equal_the_command(translator, reverse_model, reverse_data):
    lines = [*read_lines(f"{reverse_data}/dev.src")[:10], "", "a b c d"]
    for beam in (1, 5):
        answer = translator.post("/translate", json={"text": lines, "beam_size": beam})
        assert answer.status_code == 200, answer.text
        command = seqkit_here(
            "translate", reverse_model, "--beam-size", beam, stdin="".join(f"{x}\n" for x in lines)
        )
        assert [t["text"] for t in answer.json()["translations"]] == command.stdout.decode().splitlines()
    # the shortlist the training wrote, through the request as through the option
    listed_answer = translator.post("/translate", json={"text": lines, "beam_size": 3, "shortlist": True})
    assert listed_answer.status_code == 200, listed_answer.text
    listed_command = seqkit_here(
        "translate", reverse_model, "--beam-size", 3, "--shortlist", stdin="".join(f"{x}\n" for x in lines)
    )
    texts = [t["text"] for t in listed_answer.json()["translations"]]
    assert texts == listed_command.stdout.decode().splitlines()
    two = translator.post("/translate", json={"text": lines[:3], "beam_size": 4, "nbest": 2}).json()
    listed = seqkit_here(
        "translate", reverse_model, "--beam-size", 4, "--nbest", 2, stdin="".join(f"{x}\n" for x in lines[:3])
    )
    for got, line in zip(two["translations"], listed.stdout.decode().splitlines(), strict=True):
        printed = json.loads(line)["hypotheses"]
        assert [h["text"] for h in got["nbest"]] == [h["text"] for h in printed]
        # (mutation review: each hypothesis' log_prob was unchecked; its score in its place passed)
        for field in ("score", "log_prob"):
            assert [h[field] for h in got["nbest"]] == pytest.approx([h[field] for h in printed]), field
        assert got["text"] == got["nbest"][0]["text"] and got["score"] == got["nbest"][0]["score"]


def test_the_documentation_describes_each_answer_and_every_refusal_has_its_line(translator):
    spec = translator.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]

    def fields(name: str) -> set[str]:
        return set(schemas[name]["properties"])

    answer = translator.post("/translate", json={"text": ["a b", ""], "beam_size": 2, "nbest": 2}).json()
    assert set(answer) == fields("TranslateResponse")
    assert answer["translations"][1] == {"text": "", "score": None, "nbest": []}  # (the schema says so)
    assert {"type": "null"} in schemas["Translation"]["properties"]["score"]["anyOf"]
    assert set(answer["translations"][0]) == fields("Translation")
    assert set(answer["translations"][0]["nbest"][0]) == fields("Hypothesis")
    assert set(translator.get("/health").json()) == fields("HealthResponse")
    for path, method, answered in (("/translate", "post", "TranslateResponse"),
                                   ("/health", "get", "HealthResponse")):  # fmt: skip
        responses = spec["paths"][path][method]["responses"]
        assert responses["200"]["content"]["application/json"]["schema"]["$ref"].endswith(f"/{answered}")
    # the endpoints of the other model types are not this server's (they answer 422)
    assert "/generate" not in spec["paths"] and "/predict" not in spec["paths"]
    for status in ("400", "413", "422", "500", "503", "504"):
        refusal = spec["paths"]["/translate"]["post"]["responses"][status]["content"]["application/json"]
        assert refusal["schema"]["$ref"].endswith("/ErrorResponse"), status
    # Starlette's own refusals have their line too (they were {"detail": "Not Found"} and the like)
    as_json = {"content-type": "application/json"}
    refusals = {
        404: (("POST", "/translation"), {"json": {}}, "/translation: no such endpoint; this server answers "
              "POST /translate, GET /health, GET /info, GET /docs"),
        405: (("GET", "/translate"), {}, "GET /translate: not answered; use POST /translate"),
        400: (("POST", "/translate"), {"content": b'{"text": ["a\xff"]}', "headers": as_json},
              "the body could not be read as text (is it UTF-8?); send one JSON object in UTF-8"),
    }  # fmt: skip
    for status, ((method, path), request, error) in refusals.items():
        refused = translator.request(method, path, **request)
        assert (refused.status_code, refused.json()["error"]) == (status, error)
    assert translator.post("/health").json()["error"] == "POST /health: not answered; use GET /health"


def test_concurrent_requests_get_their_own_lines_in_order_from_shared_batches(translator, reverse_data):
    sources = read_lines(f"{reverse_data}/dev.src")
    alone = translator.post("/translate", json={"text": sources, "beam_size": 1}).json()["translations"]
    expected = [t["text"] for t in alone]
    before = translator.get("/health").json()
    requests = [list(range(i, len(sources), 7)) for i in range(7)] * 3  # 21 requests of interleaved lines

    def ask(indices: list[int]) -> list[str]:
        answer = translator.post("/translate", json={"text": [sources[i] for i in indices], "beam_size": 1})
        assert answer.status_code == 200, answer.text
        return [t["text"] for t in answer.json()["translations"]]

    with concurrent.futures.ThreadPoolExecutor(max_workers=21) as pool:
        answers = list(pool.map(ask, requests))
    for indices, got in zip(requests, answers, strict=True):
        assert got == [expected[i] for i in indices]
    after = translator.get("/health").json()
    assert after["requests"] - before["requests"] == 21
    assert after["batches"] - before["batches"] < 21  # requests that waited were decoded together


def test_the_body_limit_counts_every_chunk_and_replays_a_body_within_it():
    def through(chunks: list[bytes], limit: int) -> tuple[list[dict], list[dict]]:
        """What the app receives, and what is sent back, for a body sent in `chunks`."""
        incoming = [
            {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
            for i, chunk in enumerate(chunks)
        ] + [{"type": "http.disconnect"}]
        received, sent = [], []

        async def receive() -> dict:
            return incoming.pop(0)

        async def send(message: dict) -> None:
            sent.append(message)

        async def app(scope, app_receive, app_send) -> None:
            received.extend([await app_receive(), await app_receive()])  # the body, then the disconnect

        asyncio.run(BodyLimit(app, limit)({"type": "http"}, receive, send))
        return received, sent

    received, sent = through([b"a" * 40_000, b"b" * 30_000], limit=69_999)
    assert received == [] and sent[0]["status"] == 413 and b"more than 69,999 bytes" in sent[1]["body"]
    received, sent = through([b"a" * 40_000, b"b" * 30_000], limit=70_000)  # exactly the limit: read
    assert sent == [] and received == [
        {"type": "http.request", "body": b"a" * 40_000 + b"b" * 30_000, "more_body": False},
        {"type": "http.disconnect"},
    ]


def test_bad_requests_and_limits(reverse_model):
    with _serving(reverse_model, max_lines=3, max_chars=20) as client:
        too_many = client.post("/translate", json={"text": ["a"] * 4})
        assert too_many.status_code == 413 and "--max-lines 3" in too_many.json()["error"]
        too_long = client.post("/translate", json={"text": ["a", "b " * 11]})
        assert too_long.status_code == 413 and "line 2 has 22 characters" in too_long.json()["error"]
        # a body larger than any request within the limits is refused before it is parsed, with a declared
        # length or sent in chunks; a request within them, each character escaped to 12 bytes, is read
        assert server.Limits(max_lines=3, max_chars=20).max_body == 3 * (20 * 12 + 3) + 65536
        as_json = {"content-type": "application/json"}
        huge = b'{"text": ["' + b"a" * 70_000 + b'"]}'
        for body in (huge, iter([huge[:40_000], huge[40_000:]])):
            refused = client.post("/translate", content=body, headers=as_json)
            assert refused.status_code == 413
            assert "a request body of more than 66,265 bytes" in refused.json()["error"]
        escaped = json.dumps({"text": ["\U0001f600" * 20] * 3, "beam_size": 1}).encode()
        assert client.post("/translate", content=escaped, headers=as_json).status_code == 200
        wrong_type = client.post("/translate", json={"text": "a b"})
        assert wrong_type.status_code == 422 and wrong_type.json()["detail"][0]["loc"] == ["body", "text"]
        not_json = client.post(
            "/translate", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert not_json.status_code == 422
        bad_beam = client.post("/translate", json={"text": ["a"], "beam_size": 0})
        assert bad_beam.status_code == 422 and "decode.beam_size = 0" in bad_beam.json()["error"]
        misspelt = client.post("/translate", json={"text": ["a"], "beam_szie": 1})
        assert misspelt.status_code == 422 and misspelt.json()["detail"][0]["loc"] == ["body", "beam_szie"]
        # every refusal has its one line under "error", FastAPI's 422s too (beside their "detail" list)
        assert misspelt.json()["error"].startswith(
            "beam_szie: not a field of this request; did you mean beam_size? the fields: text, beam_size, nbest,"
        )
        refusals = {
            "wrong type": (
                {"json": {"text": "a b"}},
                'text: input should be a valid list, not "a b"',
            ),
            "missing": ({"json": {"beam_size": 1}}, "text: missing; it is required"),
            "missing and more": ({"json": {"beam_size": "5"}}, "text: missing (and 1 more); it is required"),
            "a long value": (
                {"json": {"text": "x" * 100}},
                'text: input should be a valid list, not "' + "x" * 36 + "...",
            ),
            "not json": (
                {"content": b"{not json", "headers": as_json},
                "the body is not valid JSON (Expecting property name enclosed in double quotes at character "
                "1); send one JSON object",
            ),
            "a form": (  # (curl -d without a content-type header)
                {"data": {"text": "a"}},
                "the body is not JSON: send a JSON object with the header content-type: application/json",
            ),
            "a list": (
                {"json": ["a"]},
                "the body is not a JSON object; send one with the fields text, beam_size,",
            ),
            "two faults": (
                {"json": {"text": ["a"], "beam_size": True, "nbest": "2"}},
                "beam_size: input should be a valid integer, not true (and 1 more)",
            ),
        }
        for name, (request, error) in refusals.items():
            refused = client.post("/translate", **request)
            assert refused.status_code == 422 and refused.json()["error"].startswith(error), (
                name,
                refused.text,
            )
        # null is "not given" for nbest as for every setting (it was a type error)
        unset = client.post("/translate", json={"text": ["c a b"], "nbest": None, "beam_size": 1})
        assert (
            unset.status_code == 200
            and unset.json() == client.post("/translate", json={"text": ["c a b"], "beam_size": 1}).json()
        )
        generate = client.post("/generate", json={"prompt": ["a"]})
        assert "prompt: not a field of this request; did you mean prompts?" in generate.json()["error"]
        huge_beam = client.post("/translate", json={"text": ["a"], "beam_size": 500})
        assert (
            huge_beam.status_code == 422
            and "more than 64, the most lines (--max-batch)" in huge_beam.json()["error"]
        )
        endless = client.post("/translate", json={"text": ["a"], "max_length_ratio": 50.0})
        assert endless.status_code == 422 and endless.json()["error"] == (
            "max_length_ratio 50: more than 4, the longest outputs (x source pieces) this server searches for"
        )
        assert client.post("/translate", json={"text": ["a"], "max_length_ratio": 4.0}).status_code == 200
        bad_nbest = client.post("/translate", json={"text": ["a"], "beam_size": 2, "nbest": 3})
        assert bad_nbest.status_code == 422 and "nbest = 3" in bad_nbest.json()["error"]
        no_output = client.post("/translate", json={"text": ["a"], "nbest": 0})  # (not read as 1)
        assert no_output.status_code == 422 and "nbest = 0: must be between 1" in no_output.json()["error"]
        wrong_model = client.post("/generate", json={"prompts": ["a"]})
        assert wrong_model.status_code == 422 and "POST /translate" in wrong_model.json()["error"]
        # a value of another JSON type is refused, not converted (true was a beam size of 1)
        for setting in ({"beam_size": "5"}, {"beam_size": True}, {"shortlist": "yes"}):
            converted = client.post("/translate", json={"text": ["a"], **setting})
            assert converted.status_code == 422, setting
            assert converted.json()["detail"][0]["loc"] == ["body", *setting]
        assert client.post("/translate", json={"text": ["a"], "length_penalty": 1}).status_code == 200
        # a lone surrogate (JSON's \ud800) was a 500 and a traceback; a lone CR is what translate reads
        surrogate = client.post(
            "/translate", content=b'{"text": ["a", "\\ud800"]}', headers={"content-type": "application/json"}
        )
        assert surrogate.status_code == 422 and "line 2 holds a lone surrogate" in surrogate.json()["error"]
        broken = client.post("/translate", json={"text": ["a", "b", "c\nd"]})
        assert broken.status_code == 422 and "line 3 holds a line break" in broken.json()["error"]
        carriage = client.post("/translate", json={"text": ["c a\rb"], "beam_size": 1})
        command = seqkit_here("translate", reverse_model, "--beam-size", 1, stdin="c a\rb\n")
        assert [t["text"] for t in carriage.json()["translations"]] == command.stdout.decode().splitlines()
        assert "4 lines in one request" in client.post("/translate", json={"text": ["a"] * 4}).json()["error"]
        assert client.get("/info").json() == json.loads(seqkit_here("info", reverse_model, "--json").stdout)
        assert client.get("/openapi.json").status_code == 200


def test_a_full_queue_is_503_and_a_long_wait_504(reverse_model, reverse_data):
    sources = read_lines(f"{reverse_data}/dev.src") * 4
    # (the worker held at its first batch: a slow request timed by a sleep was answered before the others
    # came on a busy machine, and nothing was refused)
    model, release = _held_first_batch(reverse_model)
    with _serving(reverse_model, model, max_queue=1, timeout=30) as client:
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            held = pool.submit(client.post, "/translate", json={"text": ["c a b"]})
            _until(client, lambda health: health["requests"] == 1)  # the worker is busy with it
            queued = pool.submit(client.post, "/translate", json={"text": ["a b"]})
            _until(client, lambda health: health["queued"] == 1)
            refused = [client.post("/translate", json={"text": ["a b"]}) for _ in range(3)]
            release.set()
            assert (
                held.result().status_code == 200
                and queued.result().json()["translations"][0]["text"] == "b a"
            )
        for response in refused:
            assert response.status_code == 503 and response.headers["retry-after"] == "1"
            assert "the queue is full (1 request); retry shortly" in response.json()["error"]
    with _serving(reverse_model, timeout=0.05) as client:
        late = client.post("/translate", json={"text": sources, "beam_size": 5})
        assert late.status_code == 504 and "--timeout of 0.05 s; retry, or send fewer" in late.json()["error"]


def test_a_damaged_shortlist_is_the_servers_fault_not_the_requests(tmp_path, reverse_model):
    model_dir = tmp_path / "model"
    shutil.copytree(reverse_model, model_dir)
    (model_dir / "shortlist.npz").write_bytes(b"not a shortlist")
    with _serving(model_dir) as client:
        shortlisted = client.post("/translate", json={"text": ["c a b"], "shortlist": True})
        assert shortlisted.status_code == 500 and "shortlist.npz: unreadable" in shortlisted.json()["error"]
        assert client.post("/translate", json={"text": ["c a b"], "beam_size": 1}).json()["translations"]


def test_one_requests_bad_line_fails_only_that_request(reverse_model, reverse_data):
    """Requests decoded in one batch: a line over decode.max_input_pieces is that request's 413 alone."""
    sources = read_lines(f"{reverse_data}/dev.src") * 4
    model, release = _held_first_batch(reverse_model)
    with _serving(reverse_model, model, max_chars=5000) as client:
        with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
            slow = pool.submit(client.post, "/translate", json={"text": sources, "beam_size": 1})
            _until(client, lambda health: health["requests"] == 1)  # the worker is busy: what follows waits
            good = [
                pool.submit(client.post, "/translate", json={"text": ["c a b"], "beam_size": 1})
                for _ in range(3)
            ]
            bad = pool.submit(client.post, "/translate", json={"text": ["a b " * 1000], "beam_size": 1})
            more = [
                pool.submit(client.post, "/translate", json={"text": ["b a"], "beam_size": 1})
                for _ in range(3)
            ]
            _until(client, lambda health: health["queued"] == 7)
            release.set()
            assert slow.result().status_code == 200
            assert bad.result().status_code == 413
            # its own words: a client has no --max-input-pieces to raise
            assert bad.result().json()["error"] == (
                "input line 1 has 4,000 pieces, more than this model's decode.max_input_pieces = 1,024; split "
                "the line (at its sentence ends, say)"
            )
            assert client.get("/health").json()["batches"] == 2  # the slow one's, then the seven together
            assert [f.result().status_code for f in good + more] == [200] * 6
            assert {f.result().json()["translations"][0]["text"] for f in good} == {"b a c"}


def _held_first_batch(model_dir, stream: str = "translate_stream"):
    """A model whose first batch (of translation, or of the `stream` named) waits for the returned event:
    the requests sent meanwhile are queued, whatever the machine's speed."""
    model = seqkit.load(model_dir, device="cpu")
    release, decode = threading.Event(), getattr(model, stream)
    calls = []

    def held(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            assert release.wait(60), "the test never released the first batch"
        return decode(*args, **kwargs)

    setattr(model, stream, held)
    return model, release


def _answered_while_queued(client: httpx.Client, path: str, held: dict, bodies: list[dict], release):
    """The answers to `bodies`, sent while the worker holds the batch of `held`: they all wait together."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(bodies) + 1) as pool:
        first = pool.submit(client.post, path, json=held)
        _until(client, lambda health: health["requests"] == 1)  # the worker holds it: what follows waits
        queued = [pool.submit(client.post, path, json=body) for body in bodies]
        _until(client, lambda health: health["queued"] == len(bodies))
        release.set()
        assert first.result().status_code == 200
        return [answer.result() for answer in queued]


def test_translations_waiting_together_with_other_settings_or_nbest_keep_their_own(reverse_model):
    # (mutation review: a batch key without nbest, or one for every translation, gave each request the
    # first one's settings; only the worker's batching of given keys was tested)
    model, release = _held_first_batch(reverse_model)
    bodies = [
        {"text": ["c a b", "b a"], "beam_size": 2, "nbest": 2},
        {"text": ["a b c"], "beam_size": 2},
        {"text": ["b c a"], "beam_size": 1},
    ]
    with _serving(reverse_model, model) as client:
        answers = _answered_while_queued(
            client, "/translate", {"text": ["a"], "beam_size": 1}, bodies, release
        )
        assert client.get("/health").json()["batches"] == 4  # the held one's, then one a request
        alone = [client.post("/translate", json=body).json()["translations"] for body in bodies]
    hypotheses = [
        [[h["text"] for h in t["nbest"]] for t in answer.json()["translations"]] for answer in answers
    ]
    assert hypotheses == [[[h["text"] for h in t["nbest"]] for t in translations] for translations in alone]
    assert [len(lines[0]) for lines in hypotheses] == [2, 1, 1]


def test_generate_requests_waiting_together_keep_their_own_settings(char_lm):
    # (mutation review: generate requests put in one batch got the first one's settings, and another
    # request's texts: num_samples texts a prompt do not split as lines do)
    model, release = _held_first_batch(char_lm, "generate_stream")
    bodies = [
        {"prompts": ["the"], "max_tokens": 8, "num_samples": 2, "seed": 1},
        {"prompts": ["a st", "all"], "max_tokens": 4, "seed": 2},
    ]
    with _serving(char_lm, model) as client:
        answers = _answered_while_queued(client, "/generate", {"prompts": ["every"], "max_tokens": 4}, bodies,
                                         release)  # fmt: skip
        alone = [client.post("/generate", json=body).json()["texts"] for body in bodies]
    assert [answer.json()["texts"] for answer in answers] == alone
    assert [len(texts) for texts in alone] == [2, 2]


def test_max_batch_bounds_the_lines_decoded_together(reverse_model, reverse_data):
    # one request of more lines than --max-batch was decoded as one batch of the model's batch_size (64)
    model = seqkit.load(reverse_model, device="cpu")
    encode, encoded = model.steps.encode, []

    def counted(src, src_lengths):
        encoded.append(len(src))
        return encode(src, src_lengths)

    model.steps.encode = counted
    lines = read_lines(f"{reverse_data}/dev.src")[:7]
    with _serving(reverse_model, model, max_batch=3) as client:
        answer = client.post("/translate", json={"text": lines, "beam_size": 1})
    assert answer.status_code == 200, answer.text
    assert sum(encoded) == 7 and max(encoded) <= 3, encoded
    alone = seqkit.load(reverse_model, device="cpu").translate(lines, beam_size=1)
    assert [t["text"] for t in answer.json()["translations"]] == [r.text for r in alone]
    # nor more than the model's own decode.batch_size (its operator's choice, for memory, say)
    decode = dataclasses.replace(model.config.decode, batch_size=2)
    model.config = dataclasses.replace(model.config, decode=decode)
    encoded.clear()
    with _serving(reverse_model, model, max_batch=8) as client:
        assert client.post("/translate", json={"text": lines, "beam_size": 1}).status_code == 200
    assert sum(encoded) == 7 and max(encoded) == 2, encoded


def test_a_port_in_use_is_a_one_line_error(reverse_model):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = seqkit_here("serve", reverse_model, "--port", port, "--device", "cpu")
    assert_one_line_error(result, f"--port {port}: cannot listen there", "choose another --port")
    with _serving(reverse_model, max_batch=1) as client:  # the model's own beam (5) is not a client's
        assert client.post("/translate", json={"text": ["a"]}).status_code == 200
        assert client.post("/translate", json={"text": ["a"], "beam_size": 6}).status_code == 422
    no_host = seqkit_here("serve", reverse_model, "--host", "999.1.1.1", "--port", port, "--device", "cpu")
    assert_one_line_error(no_host, "--host 999.1.1.1", "check --host and --port")


def test_the_commands_limits_reach_the_server(reverse_model, monkeypatch):
    # (mutation review: `serve` makes its Limits by position; the fields in another order passed)
    served = []
    monkeypatch.setattr(
        server, "serve", lambda model, host, port, limits: served.append((host, port, limits))
    )
    result = seqkit_here("serve", reverse_model, "--port", 1234, "--max-batch", 2, "--max-lines", 3,
                         "--max-chars", 4, "--max-queue", 5, "--timeout", 6.5, "--device", "cpu")  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    limits = server.Limits(max_batch=2, max_lines=3, max_chars=4, max_queue=5, timeout=6.5)
    assert served == [("127.0.0.1", 1234, limits)]


def test_generate_equals_the_command(char_lm):
    with _serving(char_lm) as client:
        answer = client.post(
            "/generate", json={"prompts": ["the", "a st"], "max_tokens": 20, "num_samples": 2, "seed": 5}
        )
        assert answer.status_code == 200, answer.text
        command = seqkit_here(
            "generate", char_lm, "--max-tokens", 20, "--num-samples", 2, "--seed", 5, stdin="the\na st\n"
        )
        assert answer.json()["texts"] == command.stdout.decode().splitlines()
        paths = client.get("/openapi.json").json()["paths"]
        assert paths["/generate"]["post"]["responses"]["200"]["content"]["application/json"]["schema"][
            "$ref"
        ].endswith("/GenerateResponse")
        assert "/translate" not in paths and "/predict" not in paths
        # max_tokens is bound by --max-chars (2000 here) where that is more than the model's own (200)
        # (mutation review: a bound of --max-lines, 256 here, passed)
        longer = client.post("/generate", json={"prompts": ["the"], "max_tokens": 300, "temperature": 0})
        assert longer.status_code == 200, longer.text
        longest = client.post("/generate", json={"prompts": ["the"], "max_tokens": 2001})
        assert longest.status_code == 422 and "max_tokens 2001: more than 2000" in longest.json()["error"]
    with _serving(char_lm, max_lines=3, max_chars=50) as client:
        many = client.post("/generate", json={"prompts": ["the", "a"], "num_samples": 2})
        assert many.status_code == 413 and "= 4 texts, more than --max-lines 3" in many.json()["error"]
        # (mutation review: the prompts' own limits and faults, and a limit met exactly, were unchecked)
        three = client.post("/generate", json={"prompts": ["the"], "num_samples": 3, "max_tokens": 5})
        assert three.status_code == 200 and len(three.json()["texts"]) == 3, three.text
        for prompts, status, error in (
            (["a"] * 4, 413, "4 prompts in one request, more than --max-lines 3"),
            (["the", "x" * 51], 413, "prompt 2 has 51 characters, more than --max-chars 50"),
            (["the\nend"], 422, "prompt 1 holds a line break"),
        ):
            refused = client.post("/generate", json={"prompts": prompts, "max_tokens": 5})
            assert refused.status_code == status and refused.json()["error"].startswith(error), refused.text
        # a value of another JSON type is refused, not converted, as /translate refuses it
        converted = client.post("/generate", json={"prompts": ["the"], "max_tokens": "5"})
        assert converted.status_code == 422 and converted.json()["detail"][0]["loc"] == ["body", "max_tokens"]
        # the model's own max_tokens (200) is allowed under a smaller --max-chars, as its own beam is
        assert client.post("/generate", json={"prompts": ["the"]}).status_code == 200
        # top_k at temperature 0 (greedy) is refused, as translate refuses it, not ignored
        greedy = client.post("/generate", json={"prompts": ["the"], "top_k": 3, "temperature": 0})
        assert greedy.status_code == 422 and "top_k is a sampling setting" in greedy.json()["error"]
        long = client.post("/generate", json={"prompts": ["the"], "max_tokens": 201})
        assert (
            long.status_code == 422
            and "max_tokens 201: more than 200, the longest line" in long.json()["error"]
        )


def _serve_command(model_dir, client: httpx.Client) -> subprocess.Popen:
    """`seqkit serve` in its own process, once it answers /health on the client's port."""
    process = subprocess.Popen(
        [sys.executable, "-m", "seqkit", "serve", str(model_dir), "--port", str(client.base_url.port),
         "--device", "cpu"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while True:
        with contextlib.suppress(httpx.TransportError):
            if client.get("/health").status_code == 200:
                return process
        if time.monotonic() > deadline or process.poll() is not None:
            process.kill()
            raise AssertionError("the server did not start")
        time.sleep(0.1)


def test_ctrl_c_exits_130(reverse_model):
    with httpx.Client(base_url=f"http://127.0.0.1:{free_port()}", timeout=120) as client:
        process = _serve_command(reverse_model, client)
    try:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, stderr.decode()


@dataclasses.dataclass
class _Decoding:
    """A `seqkit serve` process decoding a slow request (`slow`: its future), and the client and pool."""

    process: subprocess.Popen
    client: httpx.Client
    pool: concurrent.futures.ThreadPoolExecutor
    slow: concurrent.futures.Future
    sources: list[str]


@contextlib.contextmanager
def _decoding_a_slow_request(model_dir, data_dir, beam_size: int, workers: int = 1):
    """The server once its worker has taken a request of long lines (four dev sentences each, four times
    over) with a wide beam: it decodes for far longer than a test's next steps take (a server in another
    process cannot be held). The process is killed if still running when the block ends."""
    dev = read_lines(f"{data_dir}/dev.src")
    sources = [" ".join(dev[i : i + 4]) for i in range(len(dev))] * 4
    with httpx.Client(base_url=f"http://127.0.0.1:{free_port()}", timeout=120) as client:
        process = _serve_command(model_dir, client)
        try:
            with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
                slow = pool.submit(client.post, "/translate", json={"text": sources, "beam_size": beam_size})
                _until(client, lambda health: health["requests"] == 1)  # taken by the worker: decoding
                yield _Decoding(process, client, pool, slow, sources)
        finally:
            if process.poll() is None:
                process.kill()


def test_a_second_ctrl_c_during_a_search_exits_130_at_once(reverse_model, reverse_data):
    # the interpreter's exit around the model's thread, still inside torch, aborted: SIGABRT (-6); and
    # each request still running was cancelled as the loop closed: a traceback on stderr, a 500
    with _decoding_a_slow_request(reverse_model, reverse_data, beam_size=16, workers=3) as server_run:
        body = {"text": server_run.sources[:8], "beam_size": 16}
        waiting = [server_run.pool.submit(server_run.client.post, "/translate", json=body) for _ in range(2)]
        _until(server_run.client, lambda health: health["queued"] == 2)
        server_run.process.send_signal(signal.SIGINT)
        time.sleep(0.3)
        assert not server_run.slow.done()  # (still searching when the second comes)
        server_run.process.send_signal(signal.SIGINT)
        _, stderr = server_run.process.communicate(timeout=60)
        answers = []
        for request in [server_run.slow, *waiting]:
            with contextlib.suppress(httpx.HTTPError):
                answers.append(request.result().status_code)
    assert server_run.process.returncode == 130, stderr.decode()
    assert stderr.decode().splitlines()[-1] == "error: interrupted", stderr.decode()
    assert "Traceback" not in stderr.decode(), stderr.decode()
    assert 500 not in answers  # (a dropped connection: the client sees the server went away)


@pytest.mark.parametrize(
    "stop, exit_code",
    # a service manager's stop exits 0; a closed terminal's hangup ends the process as its default
    # action would, once the queue is answered (that action dropped the requests being answered)
    [(signal.SIGTERM, 0), (signal.SIGHUP, -signal.SIGHUP)],
    ids=["sigterm", "sighup"],
)
def test_sigterm_and_sighup_answer_the_queued_requests_then_exit(
    reverse_model, reverse_data, stop, exit_code
):
    with _decoding_a_slow_request(reverse_model, reverse_data, beam_size=8, workers=3) as server_run:
        client, sources, slow = server_run.client, server_run.sources, server_run.slow
        # other settings than the slow one's: each waits in the queue for its own batch
        queued = [
            server_run.pool.submit(client.post, "/translate", json={"text": sources[:3], "beam_size": beam})
            for beam in (1, 2)
        ]
        _until(client, lambda health: health["queued"] == 2, unless=slow.done)
        server_run.process.send_signal(stop)
        answers = [slow.result(), *(q.result() for q in queued)]
        for answer, lines in zip(answers, (sources, sources[:3], sources[:3]), strict=True):
            assert answer.status_code == 200 and len(answer.json()["translations"]) == len(lines)
        stdout, stderr = server_run.process.communicate(timeout=60)
    assert server_run.process.returncode == exit_code, stderr.decode()
    assert stdout == b""
    access = [line for line in stderr.decode().splitlines() if '"POST /translate HTTP/1.1" 200' in line]
    assert len(access) == 3  # one access-log line per request, on stderr


def _until(client: httpx.Client, condition, seconds: float = 60, unless=lambda: False) -> None:
    """Poll GET /health until `condition(its JSON)` holds; fail at once when `unless()` does (the
    condition can no longer come)."""
    deadline = time.monotonic() + seconds
    while not condition(client.get("/health").json()):
        assert not unless(), "what the test waits for can no longer happen"
        assert time.monotonic() < deadline, "the condition on /health never held"
        time.sleep(0.01)


def _queued_job(key, lines: int = 1, timed_out: bool = False):
    from seqkit.server.worker import _Job

    loop = asyncio.new_event_loop()
    job = _Job(["a"] * lines, key, lambda lines: lines, loop, loop.create_future())
    if timed_out:
        job.cancelled.set()
    return job


def test_queued_requests_with_the_same_settings_are_batched_wherever_they_wait():
    # only neighbours were: settings A, B, A, B, ... waiting were decoded one request a batch
    from seqkit.server.worker import Worker

    worker = Worker(server.Limits(max_batch=4))
    jobs = [_queued_job(key) for key in "ABABAB"] + [_queued_job("A", lines=2), _queued_job(None)]
    worker.waiting.extend([*jobs, None])
    batches = []
    while (batch := worker._take()) is not None:
        batches.append([jobs.index(job) for job in batch])
    assert batches == [[0, 2, 4], [1, 3, 5], [6], [7]]  # (6: two lines would make A's batch 5 > 4)


def test_a_batch_fills_to_max_batch_and_requests_of_no_shared_settings_go_alone():
    # (key None: a request whose settings are its own, as /generate's, never shares a batch)
    from seqkit.server.worker import Worker

    worker = Worker(server.Limits(max_batch=3))
    jobs = [_queued_job(key) for key in ("A", None, "A", None, "A", "A")]
    worker.waiting.extend([*jobs, None])
    batches = []
    while (batch := worker._take()) is not None:
        batches.append([jobs.index(job) for job in batch])
    assert batches == [[0, 2, 4], [1], [3], [5]]


def test_a_queue_of_max_queue_requests_refuses_the_next():
    from seqkit.server.worker import Worker

    worker = Worker(server.Limits(max_queue=2, timeout=0.05))  # (its thread is not started)
    worker.waiting.extend(_queued_job("A") for _ in range(2))
    with pytest.raises(server.worker.Refused) as refused:
        asyncio.run(worker.submit(["a"], "A", lambda lines: lines))
    assert refused.value.status == 503 and worker.queued == 2


def test_requests_that_timed_out_waiting_hold_no_place_in_the_queue():
    # every new request was 503 "the queue is full" until the worker reached the dead ones
    from seqkit.server.worker import Worker

    worker = Worker(server.Limits(max_queue=2, timeout=0.05))  # (its thread is not started)
    worker.waiting.extend(_queued_job("A", timed_out=True) for _ in range(2))
    assert worker.queued == 0
    with pytest.raises(server.worker.Refused) as refused:
        asyncio.run(worker.submit(["a"], "A", lambda lines: lines))
    assert refused.value.status == 504  # waited for an answer, not refused a place
    assert worker.queued == 0


def test_the_queue_counts_requests_not_the_stop_and_a_timed_out_one_is_no_place():
    from seqkit.server.worker import Worker

    stopping = Worker(server.Limits())
    stopping.waiting.extend([_queued_job("A"), None])  # (the stop, queued last at shutdown)
    assert stopping.queued == 1
    # a new request finds the place of one that timed out waiting, with no count of the queue before it
    worker = Worker(server.Limits(max_queue=2, timeout=0.05))
    worker.waiting.extend(_queued_job("A", timed_out=True) for _ in range(2))
    with pytest.raises(server.worker.Refused) as refused:
        asyncio.run(worker.submit(["a"], "A", lambda lines: lines))
    assert refused.value.status == 504


def test_the_worker_decodes_only_the_requests_still_waiting_and_answers_each_its_own():
    # (mutation review: without both of the places that drop it, _take's and _run's, a request that timed
    # out waiting was decoded all the same in its batch; each covers for the other)
    from seqkit.server.worker import Worker, _Job

    decoded = []

    def call(lines: list[str]) -> list[str]:
        decoded.append(lines)
        return [line.upper() for line in lines]

    loop = asyncio.new_event_loop()
    jobs = [_Job([f"{i}a", f"{i}b"], "A", call, loop, loop.create_future()) for i in range(3)]
    jobs[1].cancelled.set()  # (its request timed out waiting)
    worker = Worker(server.Limits())
    worker.waiting.extend([*jobs, None])
    worker._run()  # (in this thread, until the stop)
    loop.run_until_complete(asyncio.sleep(0))  # the answers, settled in the loop's thread
    loop.close()
    assert decoded == [["0a", "0b", "2a", "2b"]]
    assert [jobs[0].future.result(), jobs[2].future.result()] == [["0A", "0B"], ["2A", "2B"]]
    assert not jobs[1].future.done() and (worker.requests, worker.batches) == (2, 1)


def test_stopping_the_worker_answers_every_queued_request_first():
    # (mutation review: a stop queued ahead of the requests, or one that returned before they were answered,
    # passed: uvicorn answers its requests before the app's shutdown, but another ASGI server need not)
    from seqkit.server.worker import Worker, _Job

    def slow(lines: list[str]) -> list[str]:
        time.sleep(0.02)
        return lines

    loop = asyncio.new_event_loop()
    jobs = [_Job([key], key, slow, loop, loop.create_future()) for key in "ABC"]
    worker = Worker(server.Limits())
    worker.waiting.extend(jobs)
    worker.start()
    worker.stop()
    assert not worker.thread.is_alive() and worker.requests == 3
    loop.run_until_complete(asyncio.sleep(0))
    loop.close()
    assert [job.future.result() for job in jobs] == [["A"], ["B"], ["C"]]


def test_a_late_answer_to_a_request_that_timed_out_is_dropped_quietly():
    # (mutation review: the answer that came after the 504 raised InvalidStateError in the event loop, a
    # traceback in the server's log for each late answer)
    from seqkit.server.worker import Worker

    def slow(lines: list[str]) -> list[str]:
        time.sleep(0.2)
        return lines

    worker, problems = Worker(server.Limits(timeout=0.05)), []

    async def ask() -> server.worker.Refused:
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: problems.append(context))
        with pytest.raises(server.worker.Refused) as refused:
            await worker.submit(["a"], None, slow)
        await asyncio.to_thread(worker.stop)  # once the late answer is sent to this loop
        await asyncio.sleep(0.01)  # which settles it
        return refused.value

    worker.start()
    assert asyncio.run(ask()).status == 504
    assert problems == [] and worker.requests == 1


def test_predict_of_a_translation_model_names_its_endpoint(translator):
    # (mutation review: without its type check, /predict on a translator read a classifier's codec: a 500)
    refused = translator.post("/predict", json={"text": ["a b"]})
    assert refused.status_code == 422
    assert refused.json()["error"].endswith("translates: use POST /translate")
