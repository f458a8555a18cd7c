"""The demo: a sample directory (and, later, traffic) for `binocular demo`."""
