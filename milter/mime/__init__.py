"""Parse a message once into the read-only view every check shares."""
