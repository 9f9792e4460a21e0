"""The partner API's plumbing (versioned under /api/v1/): authentication, scopes, idempotency,
errors, pagination, parsing, throttling, schema helpers and the webhook subscription endpoints.
Every app's api.py builds on it; the router that gathers them is loyalty_site/api_router.py."""
