"""The monitoring event log and the broker that delivers it to subscribers."""
