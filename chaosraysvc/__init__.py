"""chaosraysvc: Chaos Toolkit extension for Ray Serve RayServices."""

__version__ = "0.1.0"


def discover(discover_system: bool = True) -> dict[str, object]:
    """Discover chaosraysvc's probes and actions (for `chaos discover chaosraysvc`)."""
    from chaosraysvc.discovery import discover as _discover

    return dict(_discover(discover_system))
