"""Test helpers shared by the test modules (real local servers, fixtures)."""
