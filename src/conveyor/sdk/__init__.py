"""The Python SDK: the one place that wires concrete parts together."""
