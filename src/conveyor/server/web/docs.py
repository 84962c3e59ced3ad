"""The API reference (Swagger UI) served from the package: its files come from the
``swagger-ui-bundle-v2`` wheel (Apache-2.0, licence in that distribution), never a CDN.
Without that package the reference is off and ``/docs`` says how to turn it on."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs/assets"


def add_docs(app: FastAPI) -> None:
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        swagger_ui_path = None

    if swagger_ui_path is None:

        @app.get("/docs", include_in_schema=False)
        def no_docs() -> Response:
            return PlainTextResponse(
                "The API reference needs the swagger-ui-bundle-v2 package: "
                "pip install 'conveyor[server]'. The schema is at /openapi.json.",
                status_code=404,
            )

        return

    app.mount(ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="swagger-assets")

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="Conveyor server: API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
        )
        # the page's one inline script carries the request's CSP nonce
        nonce = request.state.csp_nonce
        body = bytes(page.body).decode().replace("<script>", f'<script nonce="{nonce}">')
        return HTMLResponse(body)
