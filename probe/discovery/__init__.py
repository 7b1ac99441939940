"""Endpoint discovery through RunPod's REST API (v2): list pods and serverless endpoints and
probe them like configured ones; configured endpoints always win."""
