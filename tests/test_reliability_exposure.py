"""The server as the internet sees it: a real `rag serve` process, every route it has and every Gradio event it
declares called anonymously with hostile input. It must stay responsive, read no file it was not given through
an upload by the same client, and leave nothing behind."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from starlette.routing import Mount

from rag import Pipeline
from rag.web.server import build_app
from tests.conftest import CORPUS, free_port

pytestmark = pytest.mark.slow
TOKEN = "exposure-admin-token"
MAX_FILE_BYTES = 200_000
RATE_LIMIT = 40
PUBLIC_EVAL = 5


@dataclass
class Server:
    """A `rag serve` subprocess and the folders it may touch."""

    url: str
    proc: subprocess.Popen[bytes]
    uploads: Path
    tmp: Path
    canary: Path
    canary_text: str
    fifo: Path
    latencies: list[float] = field(default_factory=list)


def wait_healthy(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.time() + 240
    while time.time() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"rag serve exited: {log.read_text(errors='replace')[-2000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/api/health", timeout=2).status_code == 200:
                return
        time.sleep(0.5)
    pytest.fail("rag serve did not become healthy")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("exposure")
    corpus, tmp, secrets = root / "corpus", root / "tmp", root / "secrets"
    shutil.copytree(CORPUS, corpus)
    tmp.mkdir()
    secrets.mkdir()
    marker = f"canary-{uuid.uuid4().hex}"
    # A valid question file: if the server ever evaluated it, its id would show up in a result.
    canary = secrets / "questions.jsonl"
    canary.write_text(json.dumps({"id": marker, "question": f"what is {marker}?", "answers": [marker]}) + "\n")
    fifo = secrets / "pipe.jsonl"
    os.mkfifo(fifo)
    port = free_port()
    env = {**os.environ, "RAG_ADMIN_TOKEN": TOKEN, "RAG_CORPUS_DIR": str(corpus), "RAG_INDEX_DIR": str(root / "index"),
           "RAG_PORT": str(port), "RAG_HOST": "127.0.0.1", "RAG_MAX_FILE_BYTES": str(MAX_FILE_BYTES),
           "RAG_RATE_LIMIT_PER_MINUTE": str(RATE_LIMIT), "RAG_PUBLIC_EVAL_QUESTIONS": str(PUBLIC_EVAL),
           "GRADIO_TEMP_DIR": str(tmp / "gradio"), "TMPDIR": str(tmp), "RAG_CHROMA_URL": ""}
    env.pop("RAG_CHROMA_URL")
    log = root / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "rag", "serve"], env=env, stdout=out, stderr=subprocess.STDOUT,
                                cwd=root)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log)
        yield Server(url, proc, tmp / "gradio", tmp, canary, marker, fifo)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


@contextlib.contextmanager
def health_watch(server: Server) -> Iterator[None]:
    """Poll /api/health every 0.2 s while the block runs; a failure or a slow answer is recorded as 99 s."""
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                ok = httpx.get(server.url + "/api/health", timeout=3).status_code == 200
            except httpx.HTTPError:
                ok = False
            server.latencies.append(time.perf_counter() - started if ok else 99.0)
            stop.wait(0.2)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)


def client(address: str = "127.0.0.1") -> httpx.Client:
    """An HTTP client connecting from ``address`` (any 127.x address is this machine's loopback)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=30)


def hostile_paths(server: Server) -> list[str]:
    inside = server.uploads / "evil"
    inside.mkdir(parents=True, exist_ok=True)
    link = inside / "link.jsonl"
    if not link.is_symlink():
        link.symlink_to(server.canary)
    return ["/dev/zero", "/etc/passwd", "/proc/self/environ", "/proc/self/cmdline", str(server.canary),
            f"/proc/self/cwd/../secrets/{server.canary.name}", str(server.fifo), str(link),
            f"{server.uploads}/../../secrets/{server.canary.name}", f"file://{server.canary}",
            f"{server.url}/api/health", "http://169.254.169.254/latest/meta-data/", "\\\\host\\share\\x.jsonl",
            "/tmp/gradio/../../etc/passwd", "relative/../../etc/passwd", "/etc/passwd\x00.jsonl"]


def file_data(path: str) -> dict[str, object]:
    return {"path": path, "orig_name": Path(path).name or "x", "meta": {"_type": "gradio.FileData"}}


HOSTILE_TEXT = ["", "../../etc/passwd", "x" * 100_000, "\u202e\x00\ud800\r\r![p](http://h/p.png)",
                "<script>alert(1)</script>"]


def post_json(http: httpx.Client, url: str, body: object) -> httpx.Response:
    """POST ``body`` as ASCII JSON (lone surrogates travel as escapes, as a hostile client would send them)."""
    return http.post(url, content=json.dumps(body).encode(), headers={"Content-Type": "application/json"})


def value_for(component: str, path: str, variant: int) -> object:
    """A hostile value for an input of this component type; file-like inputs always get ``path``."""
    if component in {"file", "uploadbutton", "image", "audio", "video", "model3d", "gallery", "dataframe"}:
        return [file_data(path)] if variant % 2 else file_data(path)
    if component in {"number", "slider"}:
        return [1e308, -1, 10**30, "NaN", None][variant % 5]
    if component == "checkbox":
        return [True, "yes", None][variant % 3]
    if component == "chatbot":
        return [{"role": "user", "content": file_data(path)}]
    return [HOSTILE_TEXT[variant % len(HOSTILE_TEXT)], file_data(path)][variant % 2]


def drain(http: httpx.Client, server: Server, session: str, seconds: float = 30) -> str:
    """Everything the queue says to one session until its events complete (or time runs out)."""
    seen = ""
    with contextlib.suppress(httpx.HTTPError), http.stream(
            "GET", f"{server.url}/gradio_api/queue/data", params={"session_hash": session}, timeout=seconds) as r:
        started = time.time()
        for line in r.iter_lines():
            seen += line + "\n"
            if '"close_stream"' in line or time.time() - started > seconds:
                break
    return seen


def assert_nothing_leaked(server: Server, texts: list[str]) -> None:
    for text in texts:
        assert server.canary_text not in text
        assert "root:x:0:0" not in text
    for path in server.tmp.rglob("*"):
        if path.is_file() and not path.is_symlink():
            content = path.read_bytes()
            assert server.canary_text.encode() not in content, f"the canary was copied to {path}"
            assert b"root:x:0:0" not in content, f"/etc/passwd was copied to {path}"
    # Nobody holds the FIFO open for reading (an open() of it would still be blocked, waiting for a writer).
    with pytest.raises(OSError) as no_reader:
        os.close(os.open(server.fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert no_reader.value.errno == errno.ENXIO


def assert_responsive(server: Server) -> None:
    assert server.latencies, "health was never polled"
    assert max(server.latencies) < 1.0, f"/api/health took {max(server.latencies):.2f} s (99 = no answer)"
    assert server.proc.poll() is None


def test_every_gradio_event_refuses_files_it_was_not_uploaded(server: Server) -> None:
    config = httpx.get(server.url + "/config", timeout=30).json()
    types = {c["id"]: c["type"] for c in config["components"]}
    events = config["dependencies"]
    assert len(events) >= 20, "the app declares its events in /config"
    responses: list[str] = []
    join = server.url + "/gradio_api/queue/join"
    with health_watch(server), client() as http:
        for fn_index, event in enumerate(events):
            trigger = (event.get("targets") or [[None]])[0][0]
            ran_without_files = False
            for variant, path in enumerate(hostile_paths(server)):
                session = f"s{fn_index}x{variant}"
                data = [value_for(types.get(i, ""), path, variant) for i in event["inputs"]]
                has_file = "gradio.FileData" in json.dumps(data)
                if not has_file and ran_without_files:
                    continue  # the same harmless data again
                for token in ("", TOKEN):
                    if token:  # the token does not make a server file acceptable either
                        data = [token if isinstance(v, str) else v for v in data]
                    body = {"fn_index": fn_index, "trigger_id": trigger, "session_hash": session, "data": data}
                    reply = post_json(http, join, body)
                    responses.append(reply.text)
                    if has_file:
                        assert reply.status_code == 403, (fn_index, path, reply.text[:300])
                    else:
                        assert reply.status_code < 500, (fn_index, reply.text[:300])
                        responses.append(drain(http, server, session, seconds=20))
                        ran_without_files = True
        assert http.post(join, content=b"{", headers={"Content-Type": "application/json"}).status_code == 400
        assert http.post(join, content=b"[" * 100_000, headers={"Content-Type": "application/json"}).status_code == 400
        oversized = {"fn_index": 1, "session_hash": "big", "data": ["x" * 3_000_000]}
        assert http.post(join, json=oversized).status_code == 413
        for name in [n for n in httpx.get(server.url + "/gradio_api/info").json()["named_endpoints"]]:
            for path in hostile_paths(server):
                for route in (f"/gradio_api/run{name}", f"/gradio_api/call{name}", f"/gradio_api/call/v2{name}"):
                    reply = http.post(server.url + route, json={"data": [file_data(path), 3, 0, False, TOKEN]})
                    responses.append(reply.text)
                    assert reply.status_code in (403, 404), (route, path, reply.text[:300])
    assert_responsive(server)
    assert_nothing_leaked(server, responses)


def route_table(pipeline: Pipeline) -> list[tuple[str, str]]:
    """(method, path template) of every route of the app ``rag serve`` runs, Gradio's and the API's."""
    app = build_app(pipeline)
    found: list[tuple[str, str]] = []

    def walk(routes: list[object], prefix: str) -> None:
        for route in routes:
            if type(route).__name__ == "_IncludedRouter":  # FastAPI keeps included routers unflattened
                walk(route.original_router.routes, prefix)  # type: ignore[attr-defined]
            elif isinstance(route, Mount):
                if route.routes:
                    walk(route.routes, prefix + route.path)
                else:  # a static-files app: any path below it
                    found.append(("GET", f"{prefix}{route.path}/{{path:path}}"))
            else:
                path = getattr(route, "path", "")
                found.extend((method, prefix + path) for method in getattr(route, "methods", None) or {"GET"})

    walk(app.routes, "")
    return sorted(set(found))


def test_every_route_survives_hostile_input(server: Server, seed_pipeline: Pipeline) -> None:
    routes = route_table(seed_pipeline)
    documented = httpx.get(server.url + "/openapi.json", timeout=30).json()["paths"]
    templates = {path for _, path in routes}
    assert set(documented) <= {re.sub(r"\{(\w+):\w+\}", r"{\1}", t) for t in templates}, "documented paths are routes"
    assert {"/gradio_api/queue/join", "/gradio_api/upload", "/gradio_api/file={path_or_url:path}"} <= templates
    fills = [*hostile_paths(server), "..%2f..%2fetc%2fpasswd", "%00", "a" * 5000, "x"]
    bodies: list[bytes] = [b"", b"{", b"[" * 50_000, json.dumps({"data": [file_data(str(server.canary))]}).encode(),
                           json.dumps({"path": "/dev/zero", "files": [file_data("/etc/passwd")]}).encode(),
                           b"x" * 3_000_000]
    responses: list[str] = []
    with health_watch(server), client() as http:
        for method, template in routes:
            for n, fill in enumerate(fills):
                url = server.url + re.sub(r"\{[^}]+\}", lambda _, f=quote(fill, safe="/:%\\"): f, template)
                body = bodies[n % len(bodies)] if method in {"POST", "PUT", "PATCH", "DELETE"} else None
                try:
                    reply = http.request(method, url, content=body, timeout=3,
                                         headers={"Content-Type": "application/json"})
                except httpx.TimeoutException:
                    break  # a stream (heartbeat, queue data) waits for events; the health watch covers the rest
                except httpx.HTTPError:
                    continue  # e.g. the server closed an oversized upload early
                if template.startswith("/api/"):
                    assert reply.status_code < 500, (method, url[:200], reply.text[:300])
                responses.append(reply.text[:1_000_000])
    assert_responsive(server)
    assert_nothing_leaked(server, responses)


def upload(http: httpx.Client, server: Server, name: str, data: bytes) -> httpx.Response:
    return http.post(server.url + "/gradio_api/upload", files={"files": (name, data)})


def run_eval_index(server: Server) -> int:
    """The event number of the Evaluate tab's run, from the Gradio config."""
    config = httpx.get(server.url + "/config", timeout=30).json()
    return next(i for i, d in enumerate(config["dependencies"]) if d.get("api_name") == "run_eval")


def eval_event(http: httpx.Client, server: Server, path: str, token: str = "", limit: int = 0) -> str:
    fn_index = run_eval_index(server)
    session = uuid.uuid4().hex[:10]
    body = {"fn_index": fn_index, "session_hash": session, "data": [file_data(path), 3, limit, False, token]}
    reply = http.post(server.url + "/gradio_api/queue/join", json=body)
    assert reply.status_code == 200, reply.text
    return drain(http, server, session, seconds=120)


def questions_file(count: int) -> bytes:
    rows = [{"id": f"q{i}", "question": "when was the Taraz attack?", "answers": ["2011"]} for i in range(count)]
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def test_uploads_belong_to_their_client_and_evaluations_are_bounded(server: Server) -> None:
    with client("127.0.0.2") as alice, client("127.0.0.3") as mallory:
        reply = upload(alice, server, "alice.jsonl", questions_file(3))
        assert reply.status_code == 200, reply.text
        (alices,) = reply.json()
        # Another client cannot use Alice's upload, even knowing its path.
        assert "a file input must be a file this client uploaded" in eval_event_refusal(mallory, server, alices)
        done = eval_event(alice, server, alices)
        assert '"success":true' in done.replace(" ", "") and "3 questions" in done
        # The downloads live in the upload folder (no second copy), and the scratch folder is gone.
        downloads = re.findall(r'citechat-eval/run-[\w]+/alice-results\.jsonl', done)
        assert downloads and (server.uploads / downloads[0]).is_file()
        assert not list(server.tmp.glob("rag-eval-*"))
        # Without the token an evaluation is bounded, and its questions count against the caller's rate limit.
        (big,) = upload(alice, server, "big.jsonl", questions_file(PUBLIC_EVAL + 1)).json()
        assert f"at most {PUBLIC_EVAL} questions" in eval_event(alice, server, big)
        with_token = eval_event(alice, server, big, token=TOKEN)
        assert f"{PUBLIC_EVAL + 1} questions" in with_token and '"success":true' in with_token.replace(" ", "")
        answered = 0
        for _ in range(RATE_LIMIT):
            status = alice.post(server.url + "/api/ask", json={"question": "where is Taraz?"}).status_code
            if status == 429:
                break
            answered += 1
        assert answered == RATE_LIMIT - 3, "the three anonymous evaluation questions used three of the asks"
        # Upload space per client is bounded (RAG_MAX_FILE_BYTES per file, three files' worth per client).
        statuses = [upload(mallory, server, f"f{i}.jsonl", b"x" * (MAX_FILE_BYTES - 1000)).status_code
                    for i in range(4)]
        assert statuses == [200, 200, 200, 413]


def eval_event_refusal(http: httpx.Client, server: Server, path: str) -> str:
    body = {"fn_index": run_eval_index(server), "session_hash": "m", "data": [file_data(path), 3, 0, False, ""]}
    reply = http.post(server.url + "/gradio_api/queue/join", json=body)
    assert reply.status_code == 403
    return str(reply.json()["detail"])


def test_forwarded_for_is_ignored_from_untrusted_peers(server: Server) -> None:
    with client("127.0.0.4") as http:
        statuses = [http.post(server.url + "/api/ask", json={"question": "where is Taraz?"},
                              headers={"X-Forwarded-For": f"10.0.0.{i}"}).status_code for i in range(RATE_LIMIT + 5)]
    assert statuses.count(429) >= 5, "rotating X-Forwarded-For must not reset the rate limit"


def test_sigterm_stops_the_server_after_the_attacks(server: Server) -> None:
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(20) is not None
