"""The Craft AI API's routes, in the order they match: the deployments' (``api_deploy``),
then the rest (``api``), whose last route answers what is not served."""

from __future__ import annotations

from fastapi import FastAPI

from conveyor.server.craft import api, api_deploy


def install(app: FastAPI) -> None:
    app.include_router(api_deploy.router)
    app.include_router(api_deploy.endpoints)
    api.install(app)
