"""Everything that knows how vLLM is started: command lines, hardware detection, the tiny test model."""
