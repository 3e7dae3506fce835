"""Quick start with Starlette: ``tether serve examples.starlette_app:app``."""

from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


async def hello(request):  # type: ignore[no-untyped-def]
    return JSONResponse({"hello": request.query_params.get("name", "world")})


app = Starlette(routes=[Route("/", hello)])
