"""Durable quarantine store for held messages."""
