"""Quick start with Flask: ``tether-threaded examples.flask_app:app``."""

from flask import Flask, request

app = Flask(__name__)


@app.get("/")
def hello():  # type: ignore[no-untyped-def]
    return {"hello": request.args.get("name", "world")}
