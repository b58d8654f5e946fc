"""Does a crowd of heavy requests starve the light ones? A real `nextchar serve` (uvicorn, on
loopback) with an LSTM; 50 clients post 1,500-character `/api/activations` requests (the
heaviest kind) as fast as they are answered, for a bounded time, while one client times
`GET /api/models`. Not a test: it takes half a minute and depends on the machine.

    python bench/serve_load.py [--clients 50] [--seconds 20]

Prints /api/models latency quiet and under the crowd (median, 95th percentile, worst: the
target is under a second throughout) and what the heavy requests got (200, or 503 with
Retry-After when the bounded pool and its line are full); then `/api/predict` latency with 1,
10 and 50 concurrent clients, 5 s each.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

from contention import nextchar


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_models(base: str) -> float:
    started = time.perf_counter()
    with urllib.request.urlopen(f"{base}/api/models", timeout=60) as r:
        r.read()
    return time.perf_counter() - started


def post(base: str, path: str, body: dict) -> int:
    req = urllib.request.Request(
        f"{base}{path}", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def latencies(base: str, seconds: float) -> list[float]:
    out, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end:
        out.append(get_models(base))
        time.sleep(0.1)
    return out


CROWDS: list[tuple[list[float], Counter[int]]] = []


def crowd(
    base: str, path: str, body: dict, clients: int, seconds: float
) -> tuple[list[float], Counter[int]]:
    """`clients` threads posting `body` as fast as they are answered (after a 503, half a
    second's wait, as Retry-After asks, shortened): every answer's seconds, and the statuses."""
    times: list[float] = []
    statuses: Counter[int] = Counter()
    end = time.perf_counter() + seconds

    def client() -> None:
        while time.perf_counter() < end:
            started = time.perf_counter()
            status = post(base, path, body)
            times.append(time.perf_counter() - started)
            statuses[status] += 1
            if status == 503:
                time.sleep(0.5)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    CROWDS.append((times, statuses))
    return times, statuses


def row(name: str, values: list[float]) -> str:
    q95 = statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]
    return (f"| {name} | {len(values)} | {statistics.median(values) * 1000:.0f} "
            f"| {q95 * 1000:.0f} | {max(values) * 1000:.0f} |")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="serve-load-") as tmp:
        run = Path(tmp) / "lstm"
        subprocess.run(nextchar("train", "shakespeare", "--cell", "lstm", "--max-steps", "1",
                                "--eval-tokens", "1000", "--quiet", "--out", str(run)),
                       check=True, capture_output=True)  # fmt: skip
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            nextchar("serve", str(run), "--port", str(port)), stdout=subprocess.PIPE, text=True
        )
        try:
            for line in server.stdout:  # type: ignore[union-attr]
                if line.startswith("serving"):
                    break
            for _ in range(100):  # the socket is bound; uvicorn listens a moment later
                try:
                    get_models(base)
                    break
                except urllib.error.URLError:
                    time.sleep(0.1)
            quiet = latencies(base, 3.0)
            text = ("To be, or not to be, that is the question: " * 40)[:1500]
            body = {"model": run.name, "text": text}
            heavy = threading.Thread(
                target=crowd, args=(base, "/api/activations", body, args.clients, args.seconds)
            )
            heavy.start()
            time.sleep(1.0)  # the crowd is in
            loaded = latencies(base, args.seconds - 2.0)
            heavy.join()
            statuses = CROWDS[-1][1]
            predict = {"model": run.name, "text": text[:200], "k": 5}
            served = {n: crowd(base, "/api/predict", predict, n, 5.0) for n in (1, 10, 50)}
        finally:
            server.terminate()
            server.wait(timeout=30)
    print(f"`GET /api/models` on a real server, {args.clients} clients posting 1,500-character "
          "/api/activations to an LSTM 2 × 384:\n")  # fmt: skip
    print("| /api/models | requests | median ms | 95th percentile ms | worst ms |")
    print("|---|---:|---:|---:|---:|")
    print(row("quiet", quiet))
    print(row(f"beside {args.clients} heavy clients", loaded))
    print(f"\nheavy requests: {dict(sorted(statuses.items()))} (status: count) in "
          f"{args.seconds:g} s; worst under load / quiet median: "
          f"{max(loaded) / statistics.median(quiet):.1f}x")  # fmt: skip
    print("\n| `POST /api/predict`, 200 characters, k 5 | answers | median ms | 95th percentile ms "
          "| worst ms | 503s |\n|---|---:|---:|---:|---:|---:|")  # fmt: skip
    for clients, (times, codes) in served.items():
        print(f"{row(f'{clients} concurrent clients', times)} {codes[503]} |")


if __name__ == "__main__":
    main()
