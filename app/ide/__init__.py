"""GraphiQL served from the server itself, for networks that cannot reach a CDN.

`binocular build-ide` installs GraphiQL and its dependencies from the npm registry (the
versions pinned in package.json) and copies the few files the page needs into `assets/`,
which is not committed. Without them the server falls back to Strawberry's CDN page.
"""

import shutil
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
ASSETS = HERE / "assets"
ASSETS_URL = "/graphiql-assets"

# File served -> where npm puts it.
_FILES = {
    "graphiql.min.js": "graphiql/graphiql.min.js",
    "graphiql.min.css": "graphiql/graphiql.min.css",
    "react.production.min.js": "react/umd/react.production.min.js",
    "react-dom.production.min.js": "react-dom/umd/react-dom.production.min.js",
    "graphql-ws.min.js": "graphql-ws/umd/graphql-ws.min.js",
}


def built() -> bool:
    return all((ASSETS / name).is_file() for name in _FILES)


def page() -> str:
    return (HERE / "page.html").read_text().replace("ASSETS/", f"{ASSETS_URL}/")


def build(npm: str = "npm") -> None:
    """Install the pinned packages in a scratch folder and copy the assets out."""
    with tempfile.TemporaryDirectory(prefix="binocular-ide-") as scratch:
        shutil.copy(HERE / "package.json", scratch)
        subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--omit=dev", "--loglevel=error"],
            cwd=scratch,
            check=True,
        )
        staging = Path(scratch) / "assets"
        staging.mkdir()
        for name, source in _FILES.items():
            shutil.copy(Path(scratch) / "node_modules" / source, staging / name)
        if ASSETS.exists():
            shutil.rmtree(ASSETS)
        shutil.copytree(staging, ASSETS)
