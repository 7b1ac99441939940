"""RunPod serverless (queue) endpoints: reading ``/health``, the conditions derived from
consecutive readings, the round-trip job, and their config keys and metrics."""
