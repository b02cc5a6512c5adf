"""Running Tocsin in production: metrics, structured logs, start-up checks, daemon control."""
