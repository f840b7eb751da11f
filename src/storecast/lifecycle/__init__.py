"""Lifecycle layer: the jobs the doors call, the registry, monitoring and retraining."""
