"""`python -m gateway`: serve with uvicorn using the settings' host, port and workers."""

from __future__ import annotations

import argparse
import math
import signal
import sys

import uvicorn
from pydantic import ValidationError

from gateway.drain import DRAIN_SIGNALS, SERVER_TIMEOUT_MARGIN_S
from gateway.http_server import LimitedHttpToolsProtocol
from gateway.observability.request_log import logging_config
from gateway.settings import Settings


def serve(factory: str, settings: Settings, *, host: str, port: int, workers: int) -> None:
    """Run uvicorn on an app factory with the gateway's shutdown, logging and access-log policy."""
    # uvicorn re-raises the signal it shut down on; a shutdown that was asked for and went well exits 0.
    for sig in DRAIN_SIGNALS:
        signal.signal(sig, lambda *_: sys.exit(0))
    uvicorn.run(
        factory,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        # Header-size cap and request read deadline (gateway/http_server.py): uvicorn has neither.
        http=LimitedHttpToolsProtocol,
        # The gateway ends what is still in flight after shutdown_grace_s itself (gateway/drain.py); uvicorn's
        # own timeout, which would answer a bare 500, is only the backstop.
        timeout_graceful_shutdown=math.ceil(settings.shutdown_grace_s + SERVER_TIMEOUT_MARGIN_S),
        access_log=settings.access_log,
        log_level=settings.log_level,
        log_config=logging_config(settings.log_level.upper()),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gateway",
        description="Serve the sqlgate gateway. Every setting comes from SQLGATE_* environment variables "
        "(see README.md); the flags below override a few of them.",
    )
    parser.add_argument("--host", help="bind address (SQLGATE_HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (SQLGATE_PORT, default 8000)")
    parser.add_argument("--workers", type=int, help="uvicorn worker processes (SQLGATE_WORKERS, default 1)")
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as exc:
        for error in exc.errors():
            print(f"sqlgate: configuration error: {error['msg']}", file=sys.stderr)
        return 2
    serve("gateway.app:create_app", settings, host=args.host or settings.host, port=args.port or settings.port,
          workers=args.workers or settings.workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
