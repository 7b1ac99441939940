"""vLLM engine health beyond "the port answers": liveness (/health) and load (/metrics)."""
