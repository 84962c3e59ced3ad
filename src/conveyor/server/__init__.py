"""The team server: git remotes per project, a run queue, workers, a REST API.

It sits at the top beside ``cli``: it parses HTTP and git requests, calls the SDK to
run pipelines, and maps errors to HTTP status codes. See docs/server.md.
"""
