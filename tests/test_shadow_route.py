"""The shadow route, POST /s2a/shadow: the browser's fast way to the shadow after a stroke.

Good input -> the shadow PNG (the same as the handler path's at full strength); an empty
pad -> 204; bad input (sizes, bytes, k, pins and drops, too large a body) -> a 4xx JSON
error with a sentence, never a traceback, and the server keeps serving.
"""

from __future__ import annotations

import io
import json
import re
import urllib.error
import urllib.request

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

import app
from s2a import Sketch2Anime, shadow
from tests.helpers import face_sketch
from tests.test_app import running_app

SIDE = 96


@pytest.fixture(scope="module")
def handlers(tiny_weights) -> app.Handlers:
    return app.Handlers(Sketch2Anime.from_pretrained(tiny_weights))


@pytest.fixture(scope="module")
def client(handlers):
    with TestClient(FastAPI(routes=app.shadow_routes(handlers))) as client:
        yield client


def pad_read(side: int = SIDE, blank: bool = False) -> bytes:
    """What the browser posts: the pad as side x side grey bytes (255 paper)."""
    image = Image.new("L", (side, side), 255) if blank else face_sketch(side, brush=2)
    return image.tobytes()


def post(client, body: bytes, **params):
    params = {"side": SIDE, "k": 10, **params}
    return client.post(app.SHADOW_ROUTE, params=params, content=body,
                       headers={"Content-Type": "application/octet-stream"})


def test_a_stroke_gives_the_shadow(client, handlers):
    response = post(client, pad_read())
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.headers["cache-control"] == "no-store"
    # The route's own time, which the browser's timing tells apart from its own.
    assert re.fullmatch(r"shadow;dur=\d+\.\d", response.headers["server-timing"])
    shown = np.asarray(Image.open(io.BytesIO(response.content)))
    sketch = Image.frombytes("L", (SIDE, SIDE), pad_read())
    expected = shadow.shadow_layer(shadow.projection_shadow(handlers.pipe, sketch, 10), 1.0)
    assert (shown == np.asarray(expected)).all()  # the handler path's shadow, full strength
    assert shown[..., 2].mean() > shown[..., 0].mean()  # light blue lines on white


def test_empty_pad_has_no_shadow(client):
    response = post(client, pad_read(blank=True))
    assert response.status_code == 204 and response.content == b""
    assert response.headers["server-timing"].startswith("shadow;dur=")


def test_pins_and_drops_change_the_shadow(client, handlers):
    sketch = Image.frombytes("L", (SIDE, SIDE), pad_read())
    nearest = [i for i, _ in handlers.pipe(sketch, k=3, upscale=False).neighbors]
    plain = post(client, pad_read(), k=3).content
    dropped = post(client, pad_read(), k=3, exclude=",".join(map(str, nearest)))
    assert dropped.status_code == 200 and dropped.content != plain
    pinned = post(client, pad_read(), k=3, include=str(nearest[0]), exclude="")
    assert pinned.status_code == 200


def test_selection_as_the_browser_sends_it():
    from s2a.selection import Selection

    assert app.Handlers.shadow_selection(None) == ";"
    assert app.Handlers.shadow_selection(Selection((3, 17), (5,))) == "3,17;5"


@pytest.mark.parametrize("body, params, status, words", [
    (b"\x89PNG garbage", {}, 400, "grey bytes"),
    (pad_read()[:-1], {}, 400, "grey bytes"),
    (pad_read(), {"side": 95}, 400, "grey bytes"),
    (pad_read(), {"side": "abc"}, 400, "The side must be a whole number"),
    (pad_read(), {"side": 8}, 400, "The side must be a whole number"),
    (pad_read(), {"side": 100_000}, 400, "The side must be a whole number"),
    (pad_read(), {"k": 0}, 400, "k (neighbours)"),
    (pad_read(), {"k": "1e9"}, 400, "k (neighbours)"),
    (pad_read(), {"k": 2, "include": "1,2,3"}, 400, "raise k"),
    (pad_read(), {"include": "x"}, 400, "pinned neighbour"),
    (pad_read(), {"include": "-1"}, 400, "pinned neighbour"),
    (pad_read(), {"exclude": "10000"}, 400, "no neighbour #10000"),
    (pad_read(), {"include": "1", "exclude": "1"}, 400, "both pinned and dropped"),
    (pad_read(), {"exclude": ",".join(map(str, range(100)))}, 400, "At most"),
    (b"", {}, 400, "grey bytes"),
    (bytes(shadow.MAX_BODY_BYTES + 1), {"side": 512}, 413, "larger than"),
])
def test_bad_input_is_a_clear_4xx(client, body, params, status, words):
    response = post(client, body, **params)
    assert response.status_code == status
    error = response.json()["error"]
    assert words in error and "Traceback" not in error
    assert post(client, pad_read()).status_code == 200  # still serving


def test_only_post(client):
    assert client.get(app.SHADOW_ROUTE).status_code == 405


@pytest.mark.slow
def test_python_app_py_serves_the_route(tiny_weights):
    with running_app(tiny_weights) as url:
        def request(body: bytes, query: str):
            call = urllib.request.Request(url.rstrip("/") + app.SHADOW_ROUTE + query,
                                          data=body, method="POST")
            try:
                with urllib.request.urlopen(call, timeout=60) as response:
                    return response.status, response.read()
            except urllib.error.HTTPError as error:
                return error.code, error.read()

        status, png = request(pad_read(), f"?side={SIDE}&k=10")
        assert status == 200 and Image.open(io.BytesIO(png)).mode == "RGB"
        status, text = request(b"nonsense", f"?side={SIDE}")
        assert status == 400 and "grey bytes" in json.loads(text)["error"]
        status, _ = request(pad_read(), f"?side={SIDE}&k=10")
        assert status == 200  # the server keeps serving
