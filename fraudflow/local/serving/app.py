"""The endpoint as a bare ASGI app (no framework: every microsecond is on the single-record path).

Routes: GET /ping, POST /invocations (the container protocol), POST /endpoints/{name}/invocations (the
sagemaker-runtime API, so boto3's `invoke_endpoint` works with `endpoint_url` pointed here).
Hot switch: a daemon thread polls the endpoint's `generation` in the registry every `poll` seconds, loads the
new version(s) off the event loop, then replaces `self.state` in one assignment; a request reads the state
once, so it finishes on the model it started with and no request is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from fraudflow.errors import UserError
from fraudflow.local.approval import idle_reason
from fraudflow.local.registry import Endpoint, Registry, VariantSpec
from fraudflow.local.serving import api_access
from fraudflow.local.serving import capture as C
from fraudflow.local.serving import protocol as P
from fraudflow.local.serving.model import LoadedModel, load_model

# ASGI's callables, as uvicorn calls them
Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
Response = tuple[int, bytes, bytes, list[tuple[bytes, bytes]]]  # status, content type, body, headers

_DRAIN_LIMIT = 64 * 1024 * 1024  # past this, an oversized body is refused without reading it
_OFFLOAD_ROWS = 64  # bigger batches run in a thread so one large request does not stall the others
_INLINE_BYTES = 64 * 1024  # larger bodies are decoded in a worker thread
_HEAVY_AT_ONCE = 2  # large bodies decoded at the same time (each takes up to ~10x its size in memory)
_MAX_VERSION = 2**63 - 1  # SQLite's largest integer
_MAX_BACKOFF = 60.0  # seconds between retries of a generation that failed to load


@dataclass
class Variant:
    name: str
    weight: float
    model: LoadedModel


class ServingState:
    """An immutable set of variants plus the smooth weighted round-robin cursor (nginx's algorithm:
    deterministic, and every window of sum(weights) picks follows the weights exactly).

    As on SageMaker, a weight-0 variant gets no share of the traffic but is still served: a request naming
    it with `X-Amzn-SageMaker-Target-Variant` reaches it (a shadow or a canary about to be ramped up)."""

    def __init__(self, endpoint: str, variants: list[Variant], generation: int):
        self.endpoint, self.variants, self.generation = endpoint, variants, generation
        self.idle = ""  # why no variant is served, when none is
        self.by_name = {v.name: v for v in variants}
        # Traffic goes to weighted variants; all weights 0 cannot be deployed (FF807), so this is a guard.
        self._weighted = [v for v in variants if v.weight > 0] or variants
        self._current = [0.0] * len(self._weighted)
        self._total = sum(v.weight for v in self._weighted)

    def pick(self) -> Variant:
        if len(self._weighted) == 1:
            return self._weighted[0]
        best = 0
        for i, v in enumerate(self._weighted):
            self._current[i] += v.weight
            if self._current[i] > self._current[best]:
                best = i
        self._current[best] -= self._total
        return self._weighted[best]

    def describe(self) -> str:
        if not self.variants:  # an endpoint deploying on approval with nothing approved (local/approval.py)
            return f"no model ({self.idle})"
        return ", ".join(f"{v.name}={v.model.ref} (weight {v.weight:g})" for v in self.variants)


class EndpointApp:
    def __init__(
        self,
        state_dir: Path,
        *,
        endpoint: str | None = None,
        model_version: str | None = None,
        poll: float = 1.0,
        log: IO[str] | None = None,
        capture: C.CaptureConfig | None = None,
    ):
        self.state_dir = Path(state_dir)
        self.poll = poll
        self.log = log if log is not None else sys.stderr
        self._models: dict[tuple[str, int], LoadedModel] = {}
        registry = Registry(self.state_dir)
        try:
            if model_version is not None:
                group, version = parse_version_ref(model_version)
                mv = registry.get(group, version)
                self.endpoint = group  # the runtime path answers to the group's name
                self.follow = False
                self.state = self._build(
                    self.endpoint, [VariantSpec("AllTraffic", mv.group, mv.version, 1.0)], 0, registry
                )
            else:
                self.endpoint = endpoint or only_endpoint(registry)
                self.follow = True
                ep = registry.get_endpoint(self.endpoint)
                self.state = self._build(ep.name, list(ep.variants), ep.generation, registry)
        finally:
            registry.close()
        self.api_key = api_access.required_key(self.state_dir, self.endpoint)  # deploy.api.auth: api_key
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None
        self._heavy = asyncio.Semaphore(_HEAVY_AT_ONCE)
        if capture is None and self.follow:  # what the local deploy step configured for this endpoint
            capture = C.endpoint_config(self.state_dir, self.endpoint)
        self.capture = C.CaptureWriter(capture) if capture is not None else None

    # -- model state ------------------------------------------------------------------------------------
    def _build(
        self, name: str, specs: list[VariantSpec], generation: int, registry: Registry
    ) -> ServingState:
        variants = []
        for s in specs:
            key = (s.group, int(s.version))
            if key not in self._models:
                self._models[key] = load_model(registry.get(s.group, s.version))
            variants.append(Variant(s.name, float(s.weight), self._models[key]))
        live = {(v.model.group, v.model.version) for v in variants}
        self._models = {k: m for k, m in self._models.items() if k in live}
        state = ServingState(name, variants, generation)
        if not variants:
            state.idle = idle_reason(registry, name)
        return state

    def start_polling(self) -> None:
        if self.follow and self._poller is None:
            self._poller = threading.Thread(
                target=self._poll_loop, name="fraudflow-registry-poll", daemon=True
            )
            self._poller.start()

    def stop_polling(self) -> None:
        self._stop.set()

    def _poll_loop(self) -> None:
        """Follow the endpoint's generation. Whatever fails (the registry unreadable, the new version's
        snapshot damaged), the current model keeps serving, each distinct failure is logged once, and a
        failed generation is retried with a doubling delay (a newer generation is tried at once)."""
        watch = _FailureLog(self._event, self.poll)
        registry: Registry | None = None
        while not self._stop.wait(self.poll):
            gen: int | None = None  # bound before anything can fail: the handlers below read it
            try:
                if registry is None:
                    registry = Registry(self.state_dir)
                gen = registry.endpoint_generation(self.endpoint)
            except Exception as exc:  # registry unreadable: retry later, reconnecting
                if registry is not None:
                    _close_quietly(registry)
                registry = None
                watch.failed("poll_error", None, exc, serving=self.state.describe())
                continue
            if gen is None or gen == self.state.generation:
                watch.recovered(None)
                continue
            if not watch.due(gen):
                continue
            try:
                ep: Endpoint = registry.get_endpoint(self.endpoint)
                new = self._build(ep.name, list(ep.variants), ep.generation, registry)
            except Exception as exc:  # keep serving the current model whatever happens here
                watch.failed("switch_failed", gen, exc, serving=self.state.describe())
                continue
            old, self.state = self.state, new  # the atomic switch
            watch.recovered(gen)
            self._event("switch", generation=ep.generation, old=old.describe(), new=new.describe())

    def _event(self, event: str, **fields: Any) -> None:
        self._write({"ts": round(time.time(), 3), "event": event, **fields})

    def _write(self, rec: dict) -> None:
        try:
            self.log.write(json.dumps(rec) + "\n")
            self.log.flush()
        except (OSError, ValueError):
            pass  # a closed log must not fail requests

    # -- ASGI -------------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    self.start_polling()
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    self.stop_polling()
                    if self.capture is not None:
                        self.capture.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        t0 = time.perf_counter()
        method, path = scope["method"], scope["path"]
        runtime = path.startswith("/endpoints/")
        variant_name, model_ref, rows, status, in_model = None, None, 0, 500, False
        headers: list[tuple[bytes, bytes]] = []
        try:
            if path == "/ping":
                if method not in ("GET", "HEAD"):
                    raise P.BadRequest(405, "MethodNotAllowed", "use GET /ping")
                status, ctype, body = 200, b"application/json", b'{"status":"Healthy"}'
            elif path == "/invocations" or runtime:
                if runtime:
                    parts = path.split("/")
                    if len(parts) != 4 or parts[3] != "invocations":
                        raise P.BadRequest(404, "NotFound", f"no route {P.shown(path)}")
                    if parts[2] != self.endpoint:
                        raise _ValidationError(400, f"Endpoint {P.shown(parts[2])} not found.")
                if method != "POST":
                    raise P.BadRequest(405, "MethodNotAllowed", f"use POST {P.shown(path)}")
                hdr = _headers(scope)
                if self.api_key is not None and not api_access.allowed(
                    hdr.get(api_access.HEADER), self.api_key
                ):
                    raise _Forbidden(403, "ForbiddenException", "Forbidden")
                _check_inference_id(hdr.get("x-amzn-sagemaker-inference-id"))
                body = await _read_body(receive, hdr)
                state = self.state  # one read: the whole request uses this model set
                if not state.variants:
                    raise P.BadRequest(503, "ServiceUnavailable", f"endpoint {self.endpoint}: {state.idle}")
                target = hdr.get("x-amzn-sagemaker-target-variant")
                if target is not None:
                    if target not in state.by_name:
                        raise _ValidationError(
                            400,
                            f"Target variant {P.shown(target)} not found; variants: {', '.join(state.by_name)}",
                        )
                    variant = state.by_name[target]
                else:
                    variant = state.pick()
                variant_name, model_ref = variant.name, variant.model.ref
                in_model = True  # from here a client mistake is the model container's 4xx
                request = body
                body, ctype, rows = await self._invoke(variant, hdr, body)
                status = 200
                headers.append((b"x-amzn-invoked-production-variant", variant.name.encode()))
                headers.append((b"x-fraudflow-model", variant.model.ref.encode()))
                headers.append(
                    (b"x-amzn-sagemaker-inference-id", self._captured(variant, hdr, request, ctype, body))
                )
            else:
                raise P.BadRequest(
                    404, "NotFound", f"no route {P.shown(path)}: use GET /ping or POST /invocations"
                )
        except _Forbidden:  # API Gateway's answer to a missing or wrong x-api-key
            status, ctype, body = 403, b"application/json", api_access.FORBIDDEN
            headers.append((b"x-amzn-errortype", b"ForbiddenException"))
        except _ValidationError as exc:
            status, ctype, body = (
                exc.status,
                b"application/json",
                _error_body(exc, "ValidationError", runtime),
            )
            headers.append((b"x-amzn-errortype", b"ValidationError"))
        except P.BadRequest as exc:
            status, ctype, body, h = _client_error(exc, runtime, in_model, variant_name)
            headers.extend(h)
        except Exception as exc:  # a bug: say so, do not crash the server
            status, ctype = 500, b"application/json"
            message = P.clip(f"{type(exc).__name__}: {exc}", 500)
            body = json.dumps({"code": "InternalFailure", "message": message}).encode()
            headers.append((b"x-amzn-errortype", b"InternalFailure"))
        headers.append((b"content-type", ctype))
        headers.append((b"content-length", str(len(body)).encode()))
        headers.append((b"x-fraudflow-worker", str(os.getpid()).encode()))  # which process answered
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body if method != "HEAD" else b""})
        self._write(
            {
                "ts": round(time.time(), 3),
                "method": method,
                "path": path,
                "status": status,
                "latency_ms": round((time.perf_counter() - t0) * 1000, 3),
                "variant": variant_name,
                "model": model_ref,
                "rows": rows,
                "worker": os.getpid(),
            }
        )

    def _captured(self, variant: Variant, hdr: dict, request: bytes, ctype: bytes, answer: bytes) -> bytes:
        """The inference id (the caller's, else a new one), after capturing the exchange when sampled: the
        record is on disk before the answer is sent."""
        inference_id = hdr.get("x-amzn-sagemaker-inference-id") or str(uuid.uuid4())
        if self.capture is not None and self.capture.sampled():
            when = time.time()
            rec = C.record(
                inference_id=inference_id,
                request_type=hdr.get("content-type"),
                request=request,
                response_type=ctype.decode("latin-1"),
                response=answer,
                model=variant.model.ref,
                when=when,
                mode=self.capture.config.mode,
            )
            self.capture.write(self.state.endpoint, variant.name, rec, when)
        return inference_id.encode("latin-1", "replace")

    async def _invoke(self, variant: Variant, hdr: dict, body: bytes) -> tuple[bytes, bytes, int]:
        """step_code/inference.py's protocol (the SageMaker endpoint's), in its order: 415, 406, then the body."""
        model = variant.model
        media = P.request_media(hdr.get("content-type"))
        accept = P.choose_accept(hdr.get("accept"), media)
        extra = {"variant": variant.name, "model": model.ref}
        if len(body) > _INLINE_BYTES:
            # Decoding a large body takes CPU and memory: off the event loop (so /ping and small requests
            # keep flowing) and at most _HEAVY_AT_ONCE at a time (so their memory stays bounded).
            async with self._heavy:
                return await asyncio.to_thread(_answer, model, media, accept, body, extra)
        request = P.decode(body, media, model.n_features)
        # records (pandas encoding) and big batches run in a thread so they do not stall the other requests
        if request.records is not None or len(request) > _OFFLOAD_ROWS:
            return await asyncio.to_thread(_respond, model, request, accept, extra)
        return _respond(model, request, accept, extra)


def _respond(model: LoadedModel, request: P.Decoded, accept: str, extra: dict) -> tuple[bytes, bytes, int]:
    """Score a decoded request: (body, content type, answers), one answer per record or row."""
    scores = model.score(request)
    return P.encode(scores, request, accept, model.decision_threshold, extra), accept.encode(), len(request)


def _answer(
    model: LoadedModel, media: str, accept: str, body: bytes, extra: dict
) -> tuple[bytes, bytes, int]:
    return _respond(model, P.decode(body, media, model.n_features), accept, extra)


class _FailureLog:
    """Back-off and de-duplication for the poller: one log line per distinct (event, generation, error), and
    a failed generation is retried after poll, 2*poll, 4*poll, ... up to _MAX_BACKOFF seconds."""

    def __init__(self, event: Callable[..., None], poll: float) -> None:
        self._event, self._poll = event, poll
        self._logged: tuple | None = None
        self._gen: int | None = None
        self._delay = poll
        self._retry_at = 0.0

    def due(self, gen: int) -> bool:
        return gen != self._gen or time.monotonic() >= self._retry_at

    def failed(self, event: str, gen: int | None, exc: Exception, **fields: Any) -> None:
        error = _one_line(exc)
        if gen != self._gen:
            self._gen, self._delay = gen, self._poll
        key = (event, gen, error)
        if key != self._logged:
            self._logged = key
            extra = {"generation": gen} if gen is not None else {}
            self._event(event, **extra, error=error, retry_in_s=round(self._delay, 3), **fields)
        self._retry_at = time.monotonic() + self._delay
        self._delay = min(self._delay * 2, _MAX_BACKOFF)

    def recovered(self, gen: int | None) -> None:
        self._logged, self._gen, self._delay, self._retry_at = None, None, self._poll, 0.0


def _one_line(exc: Exception) -> str:
    text = str(exc) if isinstance(exc, UserError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())[:500]


def _close_quietly(registry: Registry) -> None:
    with contextlib.suppress(Exception):
        registry.close()


class _ValidationError(P.BadRequest):
    def __init__(self, status: int, message: str):
        super().__init__(status, "ValidationError", message)


def _check_inference_id(value: str | None) -> None:
    """A caller's inference id SageMaker would refuse is refused here too, before the model runs or anything is
    captured: the capture record and the answer's header carry only ids the endpoint would have taken."""
    constraint = None if value is None else C.inference_id_constraint(value)
    if constraint:
        raise _ValidationError(
            400,
            f"1 validation error detected: Value {P.shown(value)} at 'inferenceId' failed to satisfy constraint: "
            f"{constraint} (X-Amzn-SageMaker-Inference-Id: 1-{C.INFERENCE_ID_MAX} printable ASCII characters, "
            "the first not a space)",
        )


class _Forbidden(P.BadRequest):
    pass


def _client_error(exc: P.BadRequest, runtime: bool, in_model: bool, variant: str | None) -> Response:
    """On the container path: the status itself. On the runtime path, SageMaker wraps the container's 4xx in
    ModelError (HTTP 424, with OriginalStatusCode); routing and payload-size errors stay its own."""
    if not (runtime and in_model):
        return (
            exc.status,
            b"application/json",
            _error_body(exc, exc.code, runtime),
            [(b"x-amzn-errortype", exc.code.encode())],
        )
    msg = f'Received client error ({exc.status}) from {variant or "model"} with message "{exc.message}".'
    body = {
        "__type": "ModelError",
        "message": msg,
        "code": exc.code,
        "OriginalStatusCode": exc.status,
        "OriginalMessage": exc.message,
        **exc.located(),
    }
    return 424, b"application/json", json.dumps(body).encode(), [(b"x-amzn-errortype", b"ModelError")]


def _error_body(exc: P.BadRequest, code: str, runtime: bool) -> bytes:
    doc = {"code": code, "message": exc.message, **exc.located()}
    if runtime:
        doc["__type"] = code
    return json.dumps(doc).encode()


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


async def _read_body(receive: Receive, hdr: dict[str, str]) -> bytes:
    length = hdr.get("content-length")
    if length is not None:
        try:
            n = int(length)
        except ValueError:
            raise P.BadRequest(400, "BadRequest", f"invalid Content-Length {length!r}") from None
        if n > P.MAX_BODY:
            if n <= _DRAIN_LIMIT:  # read and drop it, so the client gets the 413 rather than a reset
                await _drain(receive)
            raise P.BadRequest(413, "PayloadTooLarge", f"body of {n} bytes: the limit is {P.MAX_BODY} bytes")
    chunks, size = [], 0
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            raise P.BadRequest(400, "BadRequest", "client disconnected")
        chunk = msg.get("body", b"")
        size += len(chunk)
        if size > P.MAX_BODY:
            if msg.get("more_body"):
                await _drain(receive)
            raise P.BadRequest(413, "PayloadTooLarge", f"body over the limit of {P.MAX_BODY} bytes")
        chunks.append(chunk)
        if not msg.get("more_body"):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _drain(receive: Receive) -> None:
    size = 0
    while True:
        msg = await receive()
        size += len(msg.get("body", b""))
        if msg["type"] == "http.disconnect" or not msg.get("more_body") or size > _DRAIN_LIMIT:
            return


_VERSION_REF = re.compile(r"(.+):([0-9]{1,19})")  # ASCII digits; 19 digits hold every SQLite integer


def parse_version_ref(ref: str) -> tuple[str, int]:
    m = _VERSION_REF.fullmatch(ref)
    if m is None or int(m.group(2)) > _MAX_VERSION:
        raise UserError.single(
            "FF852",
            f"--version {P.shown(ref)} is not GROUP:VERSION (VERSION a number up to {_MAX_VERSION})",
            hint="e.g. fraud-detect-xgb:3",
        )
    return m.group(1), int(m.group(2))


def only_endpoint(registry: Registry) -> str:
    eps = registry.list_endpoints()
    if len(eps) == 1:
        return eps[0].name
    if not eps:
        raise UserError.single(
            "FF851",
            "no local endpoint is deployed",
            hint="run the pipeline (its deploy step creates one) or serve a version: --version GROUP:VERSION",
        )
    raise UserError.single(
        "FF851",
        "several endpoints are deployed",
        hint=f"choose one: --endpoint {' | '.join(e.name for e in eps)}",
    )


def app_from_env() -> EndpointApp:
    """Factory for uvicorn workers (each process builds its own app from the settings the parent exported)."""
    cfg = json.loads(os.environ["FRAUDFLOW_SERVE"])
    capture = C.CaptureConfig.from_json(cfg["capture"]) if cfg.get("capture") else None
    return EndpointApp(
        Path(cfg["state_dir"]),
        endpoint=cfg.get("endpoint"),
        model_version=cfg.get("model_version"),
        capture=capture,
    )
