"""Airflow plugin: the data platform's results page on the api-server, linked in the UI.

Loaded from the plugins folder (``AIRFLOW__CORE__PLUGINS_FOLDER``) by every
Airflow process, task runs included; only the api-server serves the page. So
the app (``dataplatform.results_app``: FastAPI, SQLAlchemy, Airflow's auth) is
built on its first request, not when the plugin is imported.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/platform-results"


class ResultsApp:
    """An ASGI app that builds the real one when it is first called."""

    def __init__(self) -> None:
        self._app = None

    async def __call__(self, scope, receive, send) -> None:
        if self._app is None:
            from dataplatform.results_app import create_app

            self._app = create_app()
        await self._app(scope, receive, send)


class PlatformResultsPlugin(AirflowPlugin):
    name = "platform_results"
    fastapi_apps = [{"app": ResultsApp(), "url_prefix": URL_PREFIX,
                     "name": "Data platform results"}]
    # A "Results" entry in the UI's navigation, showing the page inside Airflow.
    external_views = [{"name": "Results", "href": f"{URL_PREFIX}/", "destination": "nav",
                       "url_route": "platform-results"}]
