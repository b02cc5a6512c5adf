"""Tocsin: an inline mail filter against impersonation of French public services."""

__version__ = "0.1.0"
