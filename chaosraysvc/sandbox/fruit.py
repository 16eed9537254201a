"""The fruit Serve application of KubeRay's RayService high-availability sample.

Written for the current Serve API (DeploymentHandle). Ray imports this module in
its replica processes through the import path `chaosraysvc.sandbox.fruit:deployment_graph`;
`serve_config()` returns the declarative config the sandbox PUTs to the dashboard.
``POST /fruit/`` with ``["PEAR", 12]`` answers ``12`` (12 pears at price 1).
"""

from __future__ import annotations

from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle
from starlette.requests import Request

APP_NAME = "fruit_app"
ROUTE_PREFIX = "/fruit"
IMPORT_PATH = "chaosraysvc.sandbox.fruit:deployment_graph"
PRICES = {"MangoStand": 3, "OrangeStand": 2, "PearStand": 1}


class _Stand:
    def __init__(self) -> None:
        self.price: float = 0

    def reconfigure(self, config: dict[str, Any]) -> None:
        self.price = config.get("price", 0)

    def check_price(self, amount: float) -> float:
        return self.price * amount


@serve.deployment
class MangoStand(_Stand):
    pass


@serve.deployment
class OrangeStand(_Stand):
    pass


@serve.deployment
class PearStand(_Stand):
    pass


@serve.deployment
class FruitMarket:
    def __init__(
        self,
        mango_stand: DeploymentHandle,
        orange_stand: DeploymentHandle,
        pear_stand: DeploymentHandle,
    ) -> None:
        self.directory = {"MANGO": mango_stand, "ORANGE": orange_stand, "PEAR": pear_stand}

    async def __call__(self, request: Request) -> float:
        fruit, amount = await request.json()
        stand = self.directory.get(str(fruit).upper())
        if stand is None:
            return -1
        return await stand.check_price.remote(amount)


deployment_graph = FruitMarket.bind(  # type: ignore[attr-defined]
    MangoStand.bind(),  # type: ignore[attr-defined]
    OrangeStand.bind(),  # type: ignore[attr-defined]
    PearStand.bind(),  # type: ignore[attr-defined]
)


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
