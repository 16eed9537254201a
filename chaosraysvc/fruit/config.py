"""The declarative Serve config of the sandbox's fruit application, without importing Ray.

The application's code is in `chaosraysvc.fruit.app` (which Ray imports in its replica
processes); the supervisor and the doctor only need its config, and importing Ray costs
seconds of CPU.
"""

from __future__ import annotations

from typing import Any

APP_NAME = "fruit_app"
ROUTE_PREFIX = "/fruit"
IMPORT_PATH = "chaosraysvc.fruit.app:deployment_graph"
PRICES = {"MangoStand": 3, "OrangeStand": 2, "PearStand": 1}


def serve_config(http_port: int, host: str = "127.0.0.1") -> dict[str, Any]:
    """Return the sample's declarative Serve config (every deployment 2 replicas, 1 per node)."""

    def deployment(name: str, user_config: dict[str, Any] | None = None) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "name": name,
            "num_replicas": 2,
            "max_replicas_per_node": 1,
            "ray_actor_options": {"num_cpus": 0.1},
        }
        if user_config is not None:
            spec["user_config"] = user_config
        return spec

    return {
        "proxy_location": "EveryNode",
        "http_options": {"host": host, "port": http_port},
        "applications": [
            {
                "name": APP_NAME,
                "import_path": IMPORT_PATH,
                "route_prefix": ROUTE_PREFIX,
                "deployments": [deployment("FruitMarket")]
                + [deployment(name, {"price": price}) for name, price in PRICES.items()],
            }
        ],
    }
