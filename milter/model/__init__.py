"""Immutable values that flow one way through Tocsin: envelope → findings → verdict → plan."""
