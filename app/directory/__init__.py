"""The directory file: divisions, users and queues, loaded by `binocular directory load`."""
