"""Liveness, readiness (the upstream really generates) and the Prometheus endpoint."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from gateway.deps import State
from gateway.errors import UpstreamUnavailable, error_response

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> dict[str, str]:
    """The gateway process answers. Says nothing about vLLM: that is /ready."""
    return {"status": "ok"}


@router.get("/ready", responses={503: {"description": "The upstream does not generate"}})
async def ready(state: State) -> JSONResponse:
    """200 when vLLM (any replica) generated a token within the readiness budget (result cached for a few
    seconds); the body says which replicas did, by position in SQLGATE_UPSTREAM_URL, never by URL. Outside
    business hours with vLLM stopped, 503 `model_asleep` with Retry-After."""
    if await state.readiness.check():
        replicas = [{"replica": r.name, "ready": r.ready, "routed": r.up, "in_flight": r.in_flight}
                    for r in state.upstream.replicas.snapshot()]
        return JSONResponse({"status": "ready", "model": state.settings.model_id, "replicas": replicas})
    if not state.gate.in_hours():
        return error_response(state.gate.asleep_error())
    return error_response(UpstreamUnavailable("The model server is not generating yet.",
                                              code="upstream_not_ready"))


@router.get("/metrics", include_in_schema=False)
async def metrics(state: State) -> Response:
    body, content_type = state.metrics.render()
    return Response(body, media_type=content_type)
