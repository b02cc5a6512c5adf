"""Checks: each reads the shared message view and returns typed findings."""
