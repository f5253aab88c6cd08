"""The HTTP server and the command line.

`app` is the Starlette app (the endpoints, the decision log and metrics around
webhook.admission), `run` starts uvicorn with TLS and the background jobs, `cli` parses the
commands, and `logs` formats JSON log lines.
"""
