"""runpod-probe: health probing and observability for LLM inference endpoints on RunPod."""

__version__ = "0.1.0"
