"""End-to-end tests through a real vLLM on CPU serving the tiny trained model."""
