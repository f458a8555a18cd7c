"""Running Binocular: logs, metrics, health, the HTTP edge and the server's lifecycle."""
