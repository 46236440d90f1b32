"""Who may call: API keys (keys.py), per-key quotas (quotas.py), failed-attempt limits per address
(attempts.py) and the caller of the request being served (caller.py). The gRPC interceptor that
applies them lives in grpc_api/auth.py."""
