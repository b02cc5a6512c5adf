"""Actions: pure builders of header edits and body bytes, each idempotent."""
