"""chaosraysvc: Chaos Toolkit extension for Ray Serve RayServices."""

__version__ = "0.1.0"
