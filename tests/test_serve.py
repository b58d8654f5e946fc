"""The web app's JSON API (FastAPI's test client), the cell analysis behind it, and `chat`."""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from nextchar.core.commands import SampleConfig
from nextchar.core.config import model_config
from nextchar.inference.cells import activations, correlate, pattern_signal
from nextchar.inference.evaluate import evaluate_text
from nextchar.inference.generate import predict_next, sample
from nextchar.models import build_model
from nextchar.models.checkpoint import save_checkpoint
from nextchar.text.tokenizers import CharTokenizer

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from nextchar.serve import MAX_GENERATE, MAX_TEXT, create_app, load_models, served_names

TEXT = 'ROMEO: "But soft!" (what light) through yonder window breaks?\nJULIET: Ay me!\n' * 4


def make(tmp_path, name: str, **config) -> str:
    tok = CharTokenizer.build(TEXT)
    torch.manual_seed(0)
    model = build_model(model_config(vocab_size=tok.vocab_size, **config))
    return str(save_checkpoint(tmp_path / name / "best", model.eval(), tok).parent)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    paths = [
        make(root, "lstm", cell="lstm", hidden_size=16, num_layers=2, embedding_dim=8),
        make(root, "gru", cell="gru", hidden_size=12),
        make(root, "gpt", kind="gpt2", n_layer=1, n_head=2, n_embd=16, block_size=16),
    ]
    models = load_models(paths, "cpu")
    # the test client sends Host: testserver, a name like any other: it must be allowed
    return {m.name: m for m in models}, TestClient(create_app(models, ["testserver"]))


def test_models_are_listed_by_served_name(served) -> None:
    _, client = served
    listed = client.get("/api/models").json()
    assert [m["name"] for m in listed] == ["lstm", "gru", "gpt"]
    assert [m["has_cells"] for m in listed] == [True, True, False]
    assert listed[0]["description"] == "lstm 2x16" and listed[0]["unit"] == "character"
    assert served_names(["runs/a", "other/a/best", "x.onnx", "gpt2"]) == ["a", "a#2", "x", "gpt2"]


def test_predict_returns_the_library_numbers(served) -> None:
    models, client = served
    r = client.post("/api/predict", json={"model": "lstm", "text": "ROMEO: Bu", "k": 5}).json()
    ref = predict_next(models["lstm"].model, models["lstm"].tokenizer, "ROMEO: Bu", 5)
    assert [(c["token"], c["p"]) for c in r["candidates"]] == [
        (t, pytest.approx(p, abs=1e-7)) for t, p in ref.candidates
    ]
    assert r["entropy_bits"] == pytest.approx(ref.entropy_bits)


def events(body: str) -> list[tuple[str, dict]]:
    out = []
    for block in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines())
        out.append((lines.get("event", "message"), json.loads(lines["data"])))
    return out


def test_generate_streams_what_sample_makes(served) -> None:
    models, client = served
    body = {"model": "gru", "prime": "JULIET:", "length": 40, "temperature": 0.7, "seed": 3}
    response = client.post("/api/generate", json=body)
    assert response.headers["content-type"].startswith("text/event-stream")
    got = events(response.text)
    assert got[-1][0] == "done" and len(got) > 2
    text = "".join(data["text"] for kind, data in got if kind == "message")
    config = SampleConfig(length=40, temperature=0.7, seed=3)
    assert text == sample(models["gru"].model, models["gru"].tokenizer, "JULIET:", config)[0]


def test_activations_step_through_the_fused_kernel_exactly(served) -> None:
    models, client = served
    m = models["lstm"]
    acts = activations(m.model, m.tokenizer, TEXT[:60])
    ids = torch.tensor([m.tokenizer.encode(TEXT[:60])])
    with torch.no_grad():
        out, (_, c) = m.model.rnn(m.model.embed(ids))
    # the last layer's h at every step is what one fused call outputs; the final c matches
    torch.testing.assert_close(acts.states["h"][-1], out[0], atol=1e-6, rtol=0)
    torch.testing.assert_close(acts.states["c"][:, -1], c[:, 0], atol=1e-6, rtol=0)
    r = client.post(
        "/api/activations", json={"model": "lstm", "text": TEXT[:60], "layer": 0, "state": "c"}
    ).json()
    assert r["tokens"] == list(TEXT[:60]) and r["layer"] == 0
    assert torch.tensor(r["values"]) == pytest.approx(acts.states["c"][0], abs=1e-4)
    gru = client.post("/api/activations", json={"model": "gru", "text": "ROMEO", "state": "c"})
    assert gru.status_code == 400 and "has no state 'c'" in gru.json()["detail"]
    gpt = client.post("/api/activations", json={"model": "gpt", "text": "ROMEO"})
    assert gpt.status_code == 400 and "RNN/LSTM/GRU" in gpt.json()["detail"]


def test_patterns_and_correlation() -> None:
    tokens = list('a "bc" (d(e)) f\nxy "z"')
    assert pattern_signal(tokens, "quotes")[:7] == [0, 0, 1, 1, 1, 0, 0]
    assert pattern_signal(tokens, "brackets")[7:14] == [1, 1, 2, 2, 1, 0, 0]
    assert pattern_signal(tokens, "line_position")[15:18] == [0, 1, 2]  # newline resets
    assert pattern_signal(tokens, "re:[xyz]") == [float(t in "xyz") for t in tokens]
    signal = pattern_signal(tokens, "quotes")
    torch.manual_seed(0)
    values = torch.randn(len(tokens), 6)
    values[:, 4] = torch.tensor(signal) * 2 - 0.5  # unit 4 follows the pattern exactly
    values[:, 1] = -torch.tensor(signal)  # unit 1 exactly against it
    values[:, 5] = 0.3  # a constant unit: r = 0, not NaN
    ranked = correlate(values, signal, top=6)
    assert {u for u, _ in ranked[:2]} == {1, 4}
    assert dict(ranked)[4] == pytest.approx(1.0) and dict(ranked)[1] == pytest.approx(-1.0)
    assert dict(ranked)[5] == 0.0


def test_correlate_endpoint_and_bad_patterns(served) -> None:
    _, client = served
    body = {"model": "lstm", "text": TEXT[:80], "pattern": "quotes", "top": 4}
    units = client.post("/api/correlate", json=body).json()
    assert len(units) == 4 and all(abs(u["r"]) <= 1 for u in units)
    assert abs(units[0]["r"]) >= abs(units[-1]["r"])
    bad = client.post("/api/correlate", json={**body, "pattern": "re:("})
    assert bad.status_code == 400 and "bad regular expression" in bad.json()["detail"]
    unknown = client.post("/api/correlate", json={**body, "pattern": "vowels"})
    assert unknown.status_code == 400 and "re:REGEX" in unknown.json()["detail"]


@pytest.mark.parametrize("name", ["lstm", "gpt"])
def test_surprise_adds_up_to_the_evaluation(served, name: str) -> None:
    models, client = served
    text = TEXT[:70]  # longer than the GPT-2's 16-token context: windows
    r = client.post("/api/surprise", json={"model": name, "text": text}).json()
    assert [t["token"] for t in r["tokens"]] == list(text)
    assert r["tokens"][0]["bits"] is None
    total_bits = sum(t["bits"] for t in r["tokens"][1:])
    assert r["bits_per_char"] == pytest.approx(total_bits / (len(text) - 1))
    m = models[name]
    result = evaluate_text(m.model, m.tokenizer, text, stride=8)
    assert total_bits * math.log(2) == pytest.approx(result.nll, rel=1e-5)


def test_limits_and_bad_requests_are_clear_4xx(served) -> None:
    _, client = served
    long_text = client.post("/api/predict", json={"model": "lstm", "text": "a" * (MAX_TEXT + 1)})
    assert long_text.status_code == 422 and "at most 4000 characters" in long_text.text
    too_long = client.post(
        "/api/generate", json={"model": "lstm", "prime": "R", "length": MAX_GENERATE + 1}
    )
    assert too_long.status_code == 422 and "less than or equal to 2000" in too_long.text
    missing = client.post("/api/predict", json={"model": "../../etc/passwd", "text": "x"})
    assert missing.status_code == 404
    assert missing.json()["detail"] == "unknown model '../../etc/passwd'; served: lstm, gru, gpt"
    not_json = client.post(
        "/api/predict", content=b"{bad", headers={"Content-Type": "application/json"}
    )
    assert not_json.status_code == 422 and "JSON decode error" in not_json.text
    unknown_char = client.post("/api/predict", json={"model": "lstm", "text": "ROMEO 한"})
    assert unknown_char.status_code == 400 and "한" in unknown_char.json()["detail"]
    bad_temperature = client.post(
        "/api/generate", json={"model": "lstm", "prime": "R", "temperature": 0}
    )
    assert bad_temperature.status_code == 422


@pytest.mark.parametrize(
    ("pattern", "refusal"),
    [
        ("re:(a|aa)+$", "took longer than 1 s"),  # backtracks without end while matching
        ("re:(?:(?:(?:a{1000}){1000}){1000})", "needs more than 256 MB"),  # compiling alone
        ("re:(?:(?:b{200}){200}){100}", "needs more than 256 MB"),
    ],
)
def test_a_runaway_regex_is_stopped_and_does_not_stall_other_requests(
    served, pattern, refusal
) -> None:
    """A pattern that would freeze or fill the server is stopped in a child process, named
    in a 400, and the server answers other requests meanwhile and keeps no memory of it."""
    import resource
    import threading
    import time

    _, client = served
    finished: dict[str, float] = {}
    evil = {"model": "lstm", "text": "a" * 40 + "!", "pattern": pattern}
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def attack() -> None:
        response = client.post("/api/correlate", json=evil)
        finished["attack"] = time.monotonic()
        finished["status"] = response.status_code
        finished["detail"] = response.json()["detail"]

    thread = threading.Thread(target=attack)
    thread.start()
    time.sleep(0.05)  # the child is compiling or backtracking now
    listed = client.get("/api/models")
    finished["models"] = time.monotonic()
    thread.join(timeout=60)
    assert listed.status_code == 200
    assert finished["status"] == 400 and refusal in finished["detail"], finished
    if "took longer" in refusal:
        assert finished["models"] < finished["attack"]  # answered while the regex ran
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before  # KiB
    assert grown < 100 * 1024  # the gigabytes were the child's, not the server's


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("predict", {"model": "lstm", "text": "RO\\ud800MEO"}),
        ("predict", {"model": "\\udfff", "text": "ROMEO"}),
        ("generate", {"model": "lstm", "prime": "\\ud83d"}),
        ("surprise", {"model": "lstm", "text": "\\ud800"}),
        ("activations", {"model": "lstm", "text": "R\\ud800"}),
        ("correlate", {"model": "lstm", "text": "ROMEO", "pattern": "re:\\ud800"}),
        ("generate", {"model": "lstm", "prime": "R", "temperature": "NaN"}),
        ("generate", {"model": "lstm", "prime": "R", "temperature": "Infinity"}),
        ("generate", {"model": "lstm", "prime": "R", "top_p": "NaN"}),
        ("generate", {"model": "lstm", "prime": "R", "seed": "NaN"}),
        ("generate", {"model": "lstm", "prime": "R", "seed": "Infinity"}),
        ("predict", {"model": "lstm", "text": "R", "k": "NaN"}),
        ("generate", {"model": "lstm", "prime": "R", "seed": str(2**63)}),
        ("generate", {"model": "lstm", "prime": "R", "seed": str(-(2**63) - 1)}),
    ],
)
def test_malformed_values_are_422_not_500(served, path: str, body: dict) -> None:
    _, client = served
    # written by hand, as a careless client sends it: NaN, lone surrogates, huge integers
    raw = (
        "{"
        + ", ".join(
            f'"{k}": ' + (v if k in ("temperature", "top_p", "seed", "k") else f'"{v}"')
            for k, v in body.items()
        )
        + "}"
    )
    response = client.post(
        f"/api/{path}", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert len(response.text) < 600  # says where and what, without echoing the input


def test_a_too_long_text_is_refused_without_echoing_it(served) -> None:
    _, client = served
    response = client.post("/api/predict", json={"model": "lstm", "text": "ROMEO " * 2000})
    assert response.status_code == 422 and "at most 4000 characters" in response.text
    assert "ROMEO ROMEO" not in response.text and len(response.text) < 600


def test_a_vanishing_temperature_or_top_p_is_the_greedy_limit(served) -> None:
    models, client = served
    m = models["gru"]
    greedy = sample(m.model, m.tokenizer, "ROMEO", SampleConfig(length=30, greedy=True))[0]
    for extra in ({"temperature": 1e-300}, {"top_p": 1e-300}):
        body = {"model": "gru", "prime": "ROMEO", "length": 30, **extra}
        response = client.post("/api/generate", json=body)
        got = events(response.text)
        assert got[-1][0] == "done"
        assert "".join(d["text"] for kind, d in got if kind == "message") == greedy


@pytest.mark.parametrize(
    ("host", "status"),
    [
        ("localhost:8000", 200),
        ("127.0.0.1:8000", 200),
        ("[::1]:8000", 200),
        ("192.168.1.20:8000", 200),  # an address literal: no DNS, no rebinding
        ("LOCALHOST", 200),
        ("testserver", 200),  # given as allowed
        ("evil.example:8000", 400),  # DNS rebinding: a foreign name that resolves to us
        ("localhost.evil.example", 400),
    ],
)
def test_the_host_header_must_name_this_server(served, host: str, status: int) -> None:
    _, client = served
    response = client.get("/api/models", headers={"Host": host})
    assert response.status_code == status
    if status == 400:
        assert "--allowed-host" in response.json()["detail"]


def test_the_api_docs_page_works_offline(served) -> None:
    _, client = served
    docs = client.get("/docs")
    assert docs.status_code == 200
    page = docs.text
    assert "/api/predict" in page and "/api/generate" in page and "maxLength" not in page
    assert "length ≤ 4000" in page  # the limits are shown
    assert "https://" not in page and "cdn" not in page.lower()
    assert client.get("/redoc").status_code == 404  # it would load from a CDN too


def test_serve_says_where_it_listens() -> None:
    from nextchar.serve import addresses

    assert addresses("127.0.0.1", 8000)[0] == "page: http://127.0.0.1:8000/"
    every = addresses("0.0.0.0", 8001)[0]
    assert every.startswith("page: http://0.0.0.0:8001/") and "other machines" in every
    assert "http://127.0.0.1:8001/" in every and "localhost" not in every
    assert addresses("::1", 80)[0] == "page: http://[::1]:80/"


def test_serve_refuses_bad_ports_and_a_port_in_use_before_saying_it_serves(tmp_path, capsys):
    import socket

    from nextchar.cli import main

    ckpt = make(tmp_path, "lstm", cell="lstm", hidden_size=16)
    for port in ("70000", "-1", "0"):
        assert main(["serve", ckpt, "--port", port]) == 2
        out, err = capsys.readouterr()
        assert out == "" and err.count("\n") == 1 and "--port must be in 1..65535" in err
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        port = str(taken.getsockname()[1])
        assert main(["serve", ckpt, "--port", port]) == 2
    finally:
        taken.close()
    out, err = capsys.readouterr()
    assert out == "" and "it is in use; choose another --port" in err and err.count("\n") == 1


def test_concurrent_requests_do_not_disturb_each_other(served) -> None:
    _, client = served
    jobs = [("predict", {"model": "lstm", "text": TEXT[: 10 + i]}) for i in range(12)]
    jobs += [
        ("generate", {"model": "gru", "prime": "RO", "length": 30, "seed": i}) for i in range(6)
    ]
    alone = [client.post(f"/api/{path}", json=body).text for path, body in jobs]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda job: client.post(f"/api/{job[0]}", json=job[1]).text, jobs))
    assert together == alone


def test_the_page_is_self_contained(served) -> None:
    _, client = served
    page = client.get("/").text
    assert "<script>" in page and 'id="bars"' in page and 'id="heatmap"' in page
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page
    assert client.get("/openapi.json").json()["paths"].keys() >= {
        "/api/predict",
        "/api/generate",
        "/api/activations",
        "/api/surprise",
        "/api/models",
        "/api/correlate",
    }


def test_serve_binds_this_machine_only_by_default() -> None:
    from nextchar.cli import build_parser
    from nextchar.cli.common import given
    from nextchar.core.commands import ServeConfig

    options = ServeConfig(**given(build_parser().parse_args(["serve", "ckpt"]), ServeConfig))
    assert (options.host, options.port) == ("127.0.0.1", 8000)


def test_chat_shows_next_tokens_and_a_continuation(tmp_path, cli, monkeypatch) -> None:
    import io

    ckpt = make(tmp_path, "lstm", cell="lstm", hidden_size=16)
    lines = ":temperature 0.5\n:length 25\nROMEO\n:top-k x\n:bogus 1\n한\n:quit\nnever read\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(lines))  # a pipe: input() reads the lines
    proc = cli("chat", ckpt, "--seed", "2")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "temperature 0.5" in out and "length 25" in out
    assert "after 'ROMEO': entropy" in out and out.count("%") >= 5
    m = load_models([ckpt], "cpu")[0]
    expected = sample(
        m.model, m.tokenizer, "ROMEO", SampleConfig(length=25, temperature=0.5, seed=2)
    )[0]
    assert "ROMEO" + expected in out
    assert "'x' is not a number for :top_k" in out
    assert "unknown setting ':bogus 1'" in out
    assert "error:" in out and "한" in out  # an unknown character: one line, chat goes on


def test_chat_on_a_terminal_shows_the_next_tokens_while_typing(tmp_path) -> None:
    """On a terminal (a pseudo-terminal here), prompt_toolkit's bottom bar shows the most
    likely next tokens for the text typed so far, before Enter is pressed."""
    import fcntl
    import os
    import pty
    import select
    import struct
    import subprocess
    import sys
    import termios
    import time

    pytest.importorskip("prompt_toolkit")
    ckpt = make(tmp_path, "lstm", cell="lstm", hidden_size=16)
    m = load_models([ckpt], "cpu")[0]
    token, p = predict_next(m.model, m.tokenizer, "ROMEO: Bu", 5).candidates[0]
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 120, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "nextchar", "chat", ckpt, "--device", "cpu"],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**os.environ, "TERM": "xterm"},
    )
    os.close(slave)
    seen = b""

    def read_until(needle: bytes, seconds: float) -> bool:
        nonlocal seen
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if select.select([master], [], [], 0.1)[0]:
                chunk = os.read(master, 65536)
                seen += chunk
                if b"\x1b[6n" in chunk:  # prompt_toolkit asks where the cursor is
                    os.write(master, b"\x1b[1;1R")
                if needle in seen:
                    return True
        return False

    try:
        assert read_until(b"type a prefix: the most likely", 60), seen[-500:]
        os.write(master, b"ROMEO: Bu")
        expected = f"next: {token} {p:.0%}".encode()
        assert read_until(expected, 30), seen[-800:]
    finally:
        proc.kill()
        proc.wait()
        os.close(master)


def test_a_body_past_the_limit_is_refused_before_it_is_read(served) -> None:
    from nextchar.serve import MAX_BODY

    _, client = served
    big = b'{"model": "lstm", "text": "' + b"a" * (MAX_BODY + 1) + b'"}'
    declared = client.post(
        "/api/predict", content=big, headers={"Content-Type": "application/json"}
    )
    assert declared.status_code == 413 and "larger than 65,536 bytes" in declared.text, (
        declared.text
    )

    def chunks():  # no Content-Length: counted as it arrives
        yield big[: MAX_BODY // 2]
        yield big[MAX_BODY // 2 :]

    streamed = client.post(
        "/api/predict", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert streamed.status_code == 413
    assert client.post("/api/predict", json={"model": "lstm", "text": "ROMEO"}).status_code == 200


def test_heavy_work_is_bounded_and_light_requests_pass_the_crowd(served) -> None:
    """A pool of one slot, held: a heavy request is a 503 with Retry-After at once while the
    model list answers; once the slot is free the same request runs; every slot comes back,
    a streamed generation's included."""
    from nextchar.serve import Pool

    _, client = served
    app = client.app
    app.state.pool, before = Pool(running=1, waiting=0), app.state.pool
    body = {"model": "lstm", "text": "ROMEO: " * 200}
    try:
        with app.state.pool.slot():  # someone else's heavy work, running now
            busy = client.post("/api/activations", json=body)
            assert busy.status_code == 503 and busy.headers["retry-after"] == "1"
            assert client.get("/api/models").status_code == 200
            refused = client.post("/api/generate", json={"model": "lstm", "prime": "RO"})
            assert refused.status_code == 503  # before the stream starts, not in its middle
        for _ in range(3):  # streamed generations give their slot back when they end
            stream = client.post(
                "/api/generate", json={"model": "lstm", "prime": "RO", "length": 5}
            )
            assert stream.status_code == 200 and "event: done" in stream.text
        assert client.post("/api/activations", json=body).status_code == 200
    finally:
        app.state.pool = before
