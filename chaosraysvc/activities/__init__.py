"""Chaos Toolkit activities (probes and actions) of chaosraysvc, one module per concern."""
