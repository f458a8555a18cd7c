"""The rules of monitoring and of the integration, as plain Python over a database session."""
