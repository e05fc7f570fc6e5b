"""`python -m gateway`: serve with uvicorn using the settings' host, port and workers."""

from __future__ import annotations

import argparse
import sys

import uvicorn
from pydantic import ValidationError

from gateway.settings import Settings


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
    uvicorn.run(
        "gateway.app:create_app",
        factory=True,
        host=args.host or settings.host,
        port=args.port or settings.port,
        workers=args.workers or settings.workers,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
        access_log=settings.access_log,
        log_level=settings.log_level,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
