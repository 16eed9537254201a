"""Chaos Toolkit controls of chaosraysvc: hooks that run around a whole experiment."""
