"""Metrics (Prometheus), tracing (Langfuse) and the per-request log line. The app factory wires them together."""
