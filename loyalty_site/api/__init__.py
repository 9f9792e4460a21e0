"""The partner API (versioned under /api/v1/): authentication, scopes, idempotency, errors,
pagination, throttling, webhooks and the router the apps register their viewsets with."""
