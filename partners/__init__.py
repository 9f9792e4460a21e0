"""Partners: the businesses connected through the API, their stores and keys, idempotency,
webhooks, and the partner API's plumbing (partners/api/) that every app's endpoints build on.

Imports no domain app (members, rewards, referrals, campaigns, feedback, transfers): they build on it."""
