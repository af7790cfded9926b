"""`fraudflow serve`: bind the socket, load the endpoint's model(s), run the ASGI app under uvicorn.

The socket is bound here, before uvicorn starts, so a busy port is a plain error (FF854) and `--port 0`
works (the chosen port is printed). `--workers N` runs N processes on the one socket (uvicorn's
supervisor); each loads the model and follows the registry on its own.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from pathlib import Path
from typing import Any

from fraudflow.errors import UserError


def command(args: argparse.Namespace) -> int:
    import uvicorn

    from fraudflow.local.serving.app import EndpointApp

    state_dir = Path(args.workspace) / ".fraudflow"
    if args.workers < 1:
        raise UserError.single("FF855", f"--workers {args.workers}: needs at least 1")
    if not (state_dir / "registry.db").is_file():
        raise UserError.single(
            "FF851",
            f"no registry in {state_dir}",
            hint="run the pipeline first, or point --workspace at the folder holding .fraudflow/",
        )
    # Load once in the parent even with workers: bad names and broken models fail here, before binding.
    capture = capture_option(args)
    app = EndpointApp(state_dir, endpoint=args.endpoint, model_version=args.model_version, capture=capture)
    sock = _bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    print(
        f"fraudflow: serving endpoint {app.endpoint!r}: {app.state.describe()}\n"
        f"fraudflow: listening on http://{host}:{port} ({args.workers} worker{'s' * (args.workers > 1)}); "
        "Ctrl-C stops",
        file=sys.stderr,
        flush=True,
    )
    common: dict[str, Any] = dict(lifespan="on", access_log=False, log_level="warning", timeout_keep_alive=30)
    if args.workers == 1:
        uvicorn.Server(uvicorn.Config(app, **common)).run(sockets=[sock])
        return 0
    from uvicorn.supervisors import Multiprocess

    os.environ["FRAUDFLOW_SERVE"] = json.dumps(
        {
            "state_dir": str(state_dir.resolve()),
            "endpoint": app.endpoint if not args.model_version else None,
            "model_version": args.model_version,
            "capture": app.capture.config.to_json() if app.capture is not None else None,
        }
    )
    config = uvicorn.Config(
        "fraudflow.local.serving.app:app_from_env", factory=True, workers=args.workers, **common
    )
    Multiprocess(config, sockets=[sock]).run()
    return 0


def capture_option(args: argparse.Namespace) -> Any:  # a CaptureConfig or None
    """--capture-dir DIR captures to DIR (else the endpoint's deploy.data_capture, read by the app)."""
    from fraudflow.local.serving.capture import CaptureConfig

    pct = getattr(args, "capture_sampling", 100.0)
    if not 0 <= pct <= 100:
        raise UserError.single("FF860", f"--capture-sampling {pct:g} is not a percentage (0-100)")
    folder = getattr(args, "capture_dir", None)
    return CaptureConfig(Path(folder).resolve(), sampling_percentage=pct) if folder else None


def _bind(host: str, port: int) -> socket.socket:
    if not 0 <= port <= 65535:
        raise UserError.single("FF854", f"--port {port} is not a TCP port (0-65535)")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise UserError.single("FF854", f"cannot resolve --host {host!r}: {exc.strerror}") from None
    family, _, proto, _, addr = infos[0]
    # proto must be IPPROTO_TCP: asyncio sets TCP_NODELAY only on such sockets (else Nagle + delayed ACK
    # add ~40 ms to every response written in two parts).
    sock = socket.socket(family, socket.SOCK_STREAM, proto or socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
    except OSError as exc:
        sock.close()
        raise UserError.single(
            "FF854", f"cannot listen on {host}:{port}: {exc.strerror}", hint="choose another --port"
        ) from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock
