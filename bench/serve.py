"""`seqkit serve` under load: N concurrent clients (1, 8, 32) send one-line requests for the test verses of
the bundled corpus to a server on 127.0.0.1, greedy and beam 5; requests per second, p50 / p99 latency,
and the throughput's ratio to one client. Writes bench/results-serve.{json,md}.

    python bench/serve.py MODEL_DIR [--verses N] [--clients 1,8,32]

The server is the real command (`seqkit serve MODEL_DIR --port P`, its own process, torch's default
threads); the clients are threads of this process with one HTTP connection each.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gzip
import json
import platform
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
TEST = HERE.parent / "corpora" / "bible-es-en" / "test.es.gz"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(url: str, verses: list[str], clients: int, beam: int) -> dict:
    """Every verse once, as one-line requests from `clients` threads; latencies in seconds."""
    remaining = iter(range(len(verses)))
    lock = threading.Lock()
    latencies: list[float] = []

    def client() -> None:
        with httpx.Client(base_url=url, timeout=600) as http:
            while True:
                with lock:
                    index = next(remaining, None)
                if index is None:
                    return
                start = time.perf_counter()
                answer = http.post("/translate", json={"text": [verses[index]], "beam_size": beam})
                answer.raise_for_status()
                with lock:
                    latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=clients) as pool:
        for future in [pool.submit(client) for _ in range(clients)]:
            future.result()
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "clients": clients,
        "beam_size": beam,
        "requests": len(latencies),
        "seconds": round(elapsed, 2),
        "requests_per_s": round(len(latencies) / elapsed, 2),
        "p50_ms": round(1000 * statistics.median(latencies), 1),
        "p99_ms": round(1000 * latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_dir")
    parser.add_argument("--verses", type=int, default=1000, help="test verses sent (from the first)")
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--beams", default="1,5")
    args = parser.parse_args()
    verses = gzip.open(TEST, "rt", encoding="utf-8").read().splitlines()[: args.verses]
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "seqkit", "serve", args.model_dir, "--port", str(port), "--max-queue", "256"],
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                sys.exit("the server did not start")
            time.sleep(0.2)
        rows = []
        for beam in map(int, args.beams.split(",")):
            single = None
            for clients in map(int, args.clients.split(",")):
                row = _run(url, verses, clients, beam)
                single = single or row["requests_per_s"]
                row["vs_one_client"] = round(row["requests_per_s"] / single, 2)
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
        health = httpx.get(f"{url}/health").json()
    finally:
        server.terminate()
        server.wait(timeout=120)
    result = {
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "command": " ".join(["python", "bench/serve.py", *sys.argv[1:]]),
        "machine": f"{platform.processor() or platform.machine()}, {__import__('os').cpu_count()} cores",
        "model_dir": args.model_dir,
        "verses": len(verses),
        "server_batches": health["batches"],
        "server_requests": health["requests"],
        "rows": rows,
    }
    (HERE / "results-serve.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"# seqkit serve under load ({result['when']}, {result['machine']})",
        "",
        f"`{result['command']}`: {len(verses)} one-line requests per row; the server decoded "
        f"{health['requests']:,} requests in {health['batches']:,} batches.",
        "",
        "| beam | clients | requests/s | vs 1 client | p50 ms | p99 ms |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
        *[
            f"| {r['beam_size']} | {r['clients']} | {r['requests_per_s']} | {r['vs_one_client']}x | {r['p50_ms']} | "
            f"{r['p99_ms']} |"
            for r in rows
        ],
    ]
    (HERE / "results-serve.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
