"""Asynchronous DNS for the authentication checks."""
