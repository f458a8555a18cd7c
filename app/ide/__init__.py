"""GraphiQL served from the server itself, for networks that cannot reach a CDN.

GraphiQL 2.1.0, React 17 and graphql-ws come as static files in the PyPI package
graphene-django-graphiql-static, a runtime dependency: pip installs them with the server, and
no build step or npm is needed. Only the package's folder is located, never imported from: its
Django view would import graphene_django.
"""

import importlib.util
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles

HERE = Path(__file__).parent
ASSETS_URL = "/graphiql-assets"
PACKAGE = "graphene_django_graphiql_static"
# The files page.html loads, of those the package ships.
FILES = (
    "graphiql.min.js",
    "graphiql.min.css",
    "react.production.min.js",
    "react-dom.production.min.js",
    "graphql-ws.min.js",
)


def assets_folder() -> Path:
    """The package's folder of static files; RuntimeError when the install lacks one we serve,
    so that the server fails at start rather than serving a blank page."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None:
        raise RuntimeError(
            f"GraphiQL's files are missing: {PACKAGE} is not installed (reinstall Binocular)."
        )
    folder = Path(spec.submodule_search_locations[0]) / "static" / PACKAGE
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        raise RuntimeError(
            f"GraphiQL's files are missing from {folder}: {', '.join(missing)} (reinstall Binocular)."
        )
    return folder


class Assets(StaticFiles):
    """The package's static folder, limited to the files the page loads."""

    def __init__(self) -> None:
        super().__init__(directory=assets_folder())

    async def get_response(self, path: str, scope):
        if path not in FILES:
            raise HTTPException(status_code=404)
        return await super().get_response(path, scope)


def page() -> str:
    return (HERE / "page.html").read_text().replace("ASSETS/", f"{ASSETS_URL}/")
