"""Cross-cutting concerns of every call, one module each, composed in `server.app`.

Order, outermost first (see docs/ARCHITECTURE.md): deprecation notices (when an API version
is deprecated) → request context (request id, log context, access log) → metrics → error
mapping → Sentry → [auth → rate limit] → the servicer.
"""
