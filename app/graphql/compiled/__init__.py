"""Compiled execution: a validated document becomes Python functions specialised for it."""
