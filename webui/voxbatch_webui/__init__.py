"""The voxbatch web UI: a NiceGUI app that talks to a voxbatch server only through the Python SDK.

Run it with `voxbatch webui --server HOST:PORT --port 8080` (see `voxbatch webui --help`).
"""
