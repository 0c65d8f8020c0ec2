"""Cross-cutting concerns of every call, one module each, composed in `server.app`.

Order, outermost first (see docs/ARCHITECTURE.md): request context (request id, log context,
access log) → metrics → error mapping → Sentry → [auth → rate limit] → the servicer.
"""
