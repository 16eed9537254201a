"""The fruit Serve application of KubeRay's RayService high-availability sample.

Written for the current Serve API (DeploymentHandle). Ray imports this module in
its replica processes through the import path `chaosraysvc.fruit.app:deployment_graph`;
`chaosraysvc.fruit.config` (free of Ray) holds the declarative config the sandbox
PUTs to the dashboard.
``POST /fruit/`` with ``["PEAR", 12]`` answers ``12`` (12 pears at price 1).
"""

from __future__ import annotations

from typing import Any

from ray import serve
from ray.serve.handle import DeploymentHandle
from starlette.requests import Request

from chaosraysvc.fruit.config import APP_NAME, IMPORT_PATH, PRICES, ROUTE_PREFIX

__all__ = ["APP_NAME", "IMPORT_PATH", "PRICES", "ROUTE_PREFIX", "deployment_graph"]


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
