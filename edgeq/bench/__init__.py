"""On-device validation, latency, memory and energy reports (the last pipeline stage)."""
