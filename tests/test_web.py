"""gankit serve and gankit report (issue 19): every endpoint's status, content type, bounds and refusals, the
explorer's functions against the library's, the playground's determinism, and the report's self-containment.
Handlers are called directly (``App.handle``); one test goes through a real socket."""

import base64
import io
import json
import re
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from gankit.analysis.explore import Point, interpolate, parse_controls, render
from gankit.images import image_grid
from gankit.inference import load_generator
from gankit.web.app import build_app
from gankit.web.playground import Playground, PlaygroundOptions
from gankit.web.report import build_report
from gankit.web.server import Request, make_server


@pytest.fixture(scope="module")
def runs(variant_runs):
    return variant_runs


@pytest.fixture(scope="module")
def app(runs):
    return build_app(
        [
            runs["plain"],
            runs["labels"],
            runs["codes"],
            runs["text"],
            runs["plain"] / "generator.safetensors",
            runs["image"],
        ]
    )


def get(app, path, **query):
    return app.handle(Request("GET", path, {k: str(v) for k, v in query.items()}))


def post(app, path, body, **query):
    return app.handle(Request("POST", path, {k: str(v) for k, v in query.items()}, json.dumps(body).encode()))


def pixels(response) -> np.ndarray:
    assert response.status == 200, response.body[:300]
    assert response.content_type == "image/png"
    return np.asarray(Image.open(io.BytesIO(response.body)))


def error_of(response, status=400) -> str:
    assert response.status == status, (response.status, response.body[:300])
    assert response.content_type == "application/json"
    return json.loads(response.body)["error"]


# ------------------------------------------------------------------------------------------ explorer


def test_models_describe_their_inputs_from_the_condition(app):
    models = json.loads(get(app, "/api/models").body)
    assert [m["summary"].split()[0] for m in models] == ["an", "conditional", "an", "a", "an", "an"]
    plain, labels, codes, text, export, image = models
    assert image["controls"][0]["type"] == "image" and image["noise_dims"] == 0
    assert plain["controls"] == [] and plain["report"] and not export["report"]
    assert labels["controls"][0]["type"] == "class" and len(labels["controls"][0]["options"]) == 4
    assert [c["name"] for c in codes["controls"]] == ["codes.cat0", "codes.cont0"] and codes["noise_dims"] == 16 - 4
    assert [c["type"] for c in text["controls"]] == ["text", "setting"] and text["stages"] == ["Stage-I", "Stage-II"]


def test_the_same_url_gives_the_same_pixels_and_each_input_changes_them(app):
    first = pixels(get(app, "/api/image.png", model=1, point="3", **{"c.labels": 2}))
    assert np.array_equal(first, pixels(get(app, "/api/image.png", model=1, point="3", **{"c.labels": 2})))
    assert not np.array_equal(first, pixels(get(app, "/api/image.png", model=1, point="3", **{"c.labels": 1})))
    assert not np.array_equal(first, pixels(get(app, "/api/image.png", model=1, point="3~0=2.5", **{"c.labels": 2})))
    code = {"c.codes.cat0": 1}
    a = pixels(get(app, "/api/image.png", model=2, point="3", **code, **{"c.codes.cont0": -1.5}))
    b = pixels(get(app, "/api/image.png", model=2, point="3", **code, **{"c.codes.cont0": 1.5}))
    assert not np.array_equal(a, b)
    assert pixels(get(app, "/api/image.png", model=0, point="1", size=64)).shape[:2] == (64, 64)


def test_endpoints_are_thin_shells_over_the_library(app, runs):
    pipeline = load_generator(runs["labels"])
    given, settings = parse_controls(pipeline.condition, {"labels": "3"})
    assert given == {"labels": 3} and settings == {}
    a, b = Point.parse("4"), Point.parse("9~1=-0.5")
    expected = np.asarray(image_grid(interpolate(pipeline, a, b, 5, "linear", given), columns=5, min_cell=64))
    served = pixels(
        get(app, "/api/interpolate.png", model=1, a="4", b="9~1=-0.5", steps=5, mode="linear", **{"c.labels": 3})
    )
    assert np.array_equal(served, expected)
    single = render(pipeline, [b], given)[0]
    assert np.array_equal(
        pixels(get(app, "/api/image.png", model=1, point="9~1=-0.5", **{"c.labels": 3})), single[..., 0]
    )
    latent = json.loads(get(app, "/api/latent", model=1, point="9~1=-0.5").body)
    assert latent["z"][1] == -0.5 and len(latent["z"]) == 16 and latent["point"] == "9~1=-0.5"


def test_plane_strip_and_arithmetic_panel_shapes(app):
    plane = pixels(get(app, "/api/plane.png", model=0, seed=5, count=6, columns=3))
    assert plane.shape[:2] == ((2 * 18 + 2) * 3, (3 * 18 + 2) * 3)  # 2 rows of 3 16-px cells (padding 2), scaled 3x
    panel = pixels(get(app, "/api/arithmetic.png", model=0, A="1,2", B="3", C="4~0=1", variants=2))
    assert panel.shape[:2] == (20 * 4, (6 * 18 + 2) * 4)  # one row: means A, B, C, the result, 2 noisy results


def test_a_text_model_needs_a_caption_and_shows_its_stages(app):
    assert "needs text" in error_of(get(app, "/api/image.png", model=3, point="0"))
    caption = {"c.text": "a small red sandal at the top left"}
    final = pixels(get(app, "/api/image.png", model=3, point="0", **caption))
    stage1 = pixels(get(app, "/api/image.png", model=3, point="0", stage=0, **caption))
    assert final.shape[0] == 32 and stage1.shape[0] == 16
    scaled = pixels(get(app, "/api/image.png", model=3, point="0", **caption, **{"c.condition_noise_scale": 0}))
    assert not np.array_equal(scaled, final)
    assert np.array_equal(final, pixels(get(app, "/api/image.png", model=3, point="0", **caption)))  # setting restored


@pytest.mark.parametrize(
    "path, query, status, message",
    [
        ("/api/image.png", {"model": 9, "point": "0"}, 404, "no model '9'"),
        ("/api/image.png", {"model": 0, "point": "x"}, 400, "a point is SEED"),
        ("/api/image.png", {"model": 0, "point": "0~99=1"}, 400, "z entry 99 does not exist"),
        ("/api/image.png", {"model": 0, "point": "0~1=nan"}, 400, "finite"),
        ("/api/image.png", {"model": 0, "point": "0~1=50"}, 400, "within"),
        ("/api/image.png", {"model": 0, "point": "0", "c.labels": 1}, 400, "has no input labels"),
        ("/api/image.png", {"model": 1, "point": "0", "c.labels": 4}, 400, "0..3"),
        ("/api/image.png", {"model": 2, "point": "0", "c.codes.cont0": 3}, 400, "[-2.0, 2.0]"),
        ("/api/image.png", {"model": 3, "point": "0", "c.text": "x" * 301}, 400, "1 to 300 characters"),
        ("/api/image.png", {"model": 0, "point": "0", "size": 0}, 400, "'size' must be in"),
        ("/api/image.png", {"model": 0, "point": "0", "stage": 1}, 400, "stage must be 0..0"),
        ("/api/plane.png", {"model": 0, "count": 65}, 400, "'count' must be in 1..64"),
        ("/api/plane.png", {"model": 0, "seed": "one"}, 400, "must be an integer"),
        ("/api/interpolate.png", {"model": 0, "a": "1", "b": "2", "steps": 33}, 400, "2..32"),
        ("/api/interpolate.png", {"model": 0, "a": "1", "b": "2", "mode": "cubic"}, 400, "slerp, linear"),
        ("/api/interpolate.png", {"model": 0, "a": "1"}, 400, "missing parameter 'b'"),
        ("/api/arithmetic.png", {"model": 0, "A": ",".join(["1"] * 17), "B": "1", "C": "1"}, 400, "1 to 16 samples"),
        ("/api/report", {"model": 4}, 404, "export, not a run folder"),
        ("/api/compare", {"models": "0,4"}, 404, "export, not a run folder"),
        ("/api/compare", {"models": "0,9"}, 404, "no model '9'"),
        ("/api/compare", {"models": "0"}, 404, "needs two run folders"),
        ("/nowhere", {}, 404, "no such page"),
        ("/static/../pyproject.toml", {}, 404, "no such page"),
    ],
)
def test_bad_requests_get_a_4xx_with_a_message(app, path, query, status, message):
    assert message in error_of(get(app, path, **query), status)


def test_an_image_to_image_model_shows_input_output_target_on_its_data(app):
    grid = pixels(get(app, "/api/pairs.png", model=5, start=4, count=3))
    assert grid.shape[:2] == ((3 * 34 + 2) * 2, (3 * 34 + 2) * 2)  # 3 rows of input | output | target, 32 px cells x2
    assert "/api/pairs.png" in error_of(get(app, "/api/image.png", model=5, point="0"))
    assert "takes no input images" in error_of(get(app, "/api/pairs.png", model=0))
    assert "start must be in 0..11" in error_of(get(app, "/api/pairs.png", model=5, start=12))


def test_post_to_a_page_is_refused(app):
    assert "use GET" in error_of(post(app, "/api/models", {}), 405)


def test_the_page_and_its_files_are_served(app):
    page = get(app, "/")
    assert page.status == 200 and page.content_type.startswith("text/html") and b"/static/app.js" in page.body
    assert get(app, "/static/app.js").content_type.startswith("text/javascript")
    assert not re.search(rb"(src|href)=\"https?://", page.body)  # nothing from elsewhere
    report = get(app, "/api/report", model=0)
    assert report.status == 200 and report.content_type.startswith("text/html") and b"Training curves" in report.body


def png_base64(image: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(image.squeeze(-1) if image.shape[-1] == 1 else image).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_an_uploaded_image_is_projected_to_a_point_the_explorer_draws(app):
    for model in ("0", "1", "2"):  # unconditional, class-conditional, InfoGAN
        target = pixels(get(app, "/api/image.png", model=model, point="7"))
        answer = post(app, "/api/project", {"image": png_base64(target)}, model=model)
        assert answer.status == 200, answer.body[:300]
        found = json.loads(answer.body)
        assert found["psnr"] > 20 and found["seconds"] > 0, (model, found)
        controls = {f"c.{k}": v for k, v in found["settings"].items()}
        shown = pixels(get(app, "/api/image.png", model=model, point=found["point"], **controls))
        error = np.mean((shown.astype(float) - target.astype(float)) ** 2)
        assert abs(10 * np.log10(255**2 / max(error, 1e-10)) - found["psnr_shown"]) < 0.01, model
    assert set(json.loads(post(app, "/api/project", {"image": png_base64(target)}, model=1).body)["settings"]) == {
        "labels"
    }


@pytest.mark.parametrize(
    "model, body, message",
    [
        ("3", {"image": "aGk="}, "draws images on its own"),  # text-to-image: needs a caption
        ("0", {"image": "not base64!"}, "not valid base64"),
        ("0", {"image": base64.b64encode(b"GIF89a but not really").decode()}, "the uploaded image: cannot read"),
        ("0", {}, "send the image as"),
    ],
)
def test_a_bad_upload_gets_a_message(app, model, body, message):
    assert message in error_of(post(app, "/api/project", body, model=model))


def test_the_compare_view_compares_the_served_run_folders(app):
    def legend(response) -> list[str]:
        assert response.status == 200 and response.content_type.startswith("text/html")
        assert response.headers["Content-Security-Policy"]
        return re.findall(r"&#9632;</span> ([^ :(<]+)", response.body.decode())

    assert legend(get(app, "/api/compare")) == ["plain", "labels", "codes", "stage2", "image"]  # not the export
    assert legend(get(app, "/api/compare", models="2,0")) == ["codes", "plain"]


# ------------------------------------------------------------------------------------------ playground


def test_playground_sessions_train_and_are_deterministic(app):
    choices = json.loads(get(app, "/api/playground/choices").body)
    assert "ring" in choices["targets"] and "hinge" in choices["losses"]
    options = {"target": "grid", "loss": "hinge", "r1_weight": 1.0, "pack": 2, "ema": True, "hidden": 32}
    first = json.loads(post(app, "/api/playground", {"options": options, "resolution": 12}).body)
    assert first["view"]["steps"] == {"g": 0, "d": 0} and len(first["view"]["d_map"]["values"]) == 12
    views = []
    for _ in range(2):
        key = json.loads(post(app, "/api/playground", {"options": options}).body)["id"]
        post(app, "/api/playground/step", {"id": key, "mode": "d", "steps": 3})
        views.append(json.loads(post(app, "/api/playground/step", {"id": key, "steps": 20}).body)["view"])
    assert views[0] == views[1]  # the same options and steps, the same pictures
    assert views[0]["steps"] == {"g": 20, "d": 23} and views[0]["fake"] != first["view"]["fake"]
    assert views[0]["modes"]["modes_total"] == 25 and len(views[0]["history"]) == 23


def test_playground_bounds_and_refusals(app):
    def refused(body, path="/api/playground", status=400):
        return error_of(post(app, path, body), status)

    assert "playground.target: 'moon' is not one of 'ring'" in refused({"options": {"target": "moon"}})
    assert "unknown key(s) targt" in refused({"options": {"targt": "ring"}})
    assert "pack must be in [1, 6]" in refused({"options": {"pack": 9}})
    assert "lr_d must be in" in refused({"options": {"lr_d": 1.0}})
    assert "draw 3 to 500 points" in refused({"options": {"target": "drawn", "points": [[0, 0]]}})
    assert "within [-1.5, 1.5]" in refused({"options": {"target": "drawn", "points": [[0, 0], [1, 1], [9, 9]]}})
    assert "not JSON" in error_of(app.handle(Request("POST", "/api/playground", {}, b"{oops")))
    key = json.loads(post(app, "/api/playground", {"options": {"hidden": 16}}).body)["id"]
    assert "steps must be in 1..200" in refused({"id": key, "steps": 201}, "/api/playground/step")
    assert "mode must be both, d or g" in refused({"id": key, "mode": "x"}, "/api/playground/step")
    assert "no playground" in refused({"id": "nope"}, "/api/playground/step", 404)


def test_a_drawn_target_counts_its_points_as_modes():
    game = Playground(PlaygroundOptions(target="drawn", points=[[0, 0], [0.5, 0.5], [-0.5, 0.5]], hidden=16))
    game.step("both", 5)
    view = game.view(10)
    assert view["modes"]["modes_total"] == 3 and len(view["arrows"]) == len(view["fake"])
    assert view["d_map"]["kind"] == "probability"


# ------------------------------------------------------------------------------------------ report, socket


def test_the_report_is_self_contained(runs, tmp_path):
    from gankit.cli import main

    assert main(["report", str(runs["labels"]), "--out", str(tmp_path / "r.html")]) == 0
    html = (tmp_path / "r.html").read_text()
    assert not re.search(r"(src|href)=\"(https?:)?//", html) and "<script" not in html
    assert html.count("data:image/png;base64,") >= 4  # timeline, real, generated, the class rows
    assert "one row per class (4)" in html and "<svg" in html and "ckpt-00000002.safetensors" in html
    codes = build_report(runs["codes"])
    assert "cat0: one column per value" in codes and "cont0: one column per value" in codes


def test_a_real_socket_on_loopback(app):
    server = make_server(app, "127.0.0.1", 0)
    assert server.server_address[0] == "127.0.0.1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        with urllib.request.urlopen(f"{base}/api/models") as response:
            assert response.headers["Content-Type"] == "application/json" and len(json.load(response)) == 6
        with pytest.raises(urllib.error.HTTPError) as failure:
            urllib.request.urlopen(f"{base}/api/image.png?model=0&point=0~1=inf")
        assert failure.value.code == 400 and "finite" in json.load(failure.value)["error"]
        big = urllib.request.Request(
            f"{base}/api/playground", data=b"x" * 300_000, method="POST", headers={"Content-Type": "application/json"}
        )
        with pytest.raises(urllib.error.HTTPError) as failure:
            urllib.request.urlopen(big)
        assert failure.value.code == 413
    finally:
        server.shutdown()
        server.server_close()


# ------------------------------------------------------------------------------------------ in a browser
# Headless Chromium (Debian's chromium package) driven by playwright. CI sets GANKIT_REQUIRE_BROWSER=1, so a
# missing browser fails there instead of skipping.

IMAGE_DATA = """sel => { const img = document.querySelector(sel), c = document.createElement('canvas');
  c.width = img.naturalWidth; c.height = img.naturalHeight; c.getContext('2d').drawImage(img, 0, 0);
  return c.toDataURL(); }"""
LOADED = """([sel, part]) => { const i = document.querySelector(sel);
  return i && i.complete && i.naturalWidth > 0 && i.src.includes(part); }"""


@pytest.fixture(scope="module")
def browser():
    import os
    import shutil

    required = os.environ.get("GANKIT_REQUIRE_BROWSER") == "1"
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if required:
            raise
        pytest.skip("playwright is not installed (pip install playwright)")
    if not shutil.which("chromium") and not required:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=shutil.which("chromium") or "/usr/bin/chromium", args=["--no-sandbox"]
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def site(app):
    server = make_server(app, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture
def page(browser):
    # playwright's wait_for_function evaluates its predicate with eval, which the served Content-Security-Policy
    # forbids: these tests of what the page does bypass it; the hostile-name test runs under it too.
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, bypass_csp=True)
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    page.close()
    assert errors == []


def test_browser_playground_trains_and_its_canvas_changes(page, site):
    page.goto(site + "#playground?target=ring&hidden=32")
    page.wait_for_function("document.getElementById('pg-steps').textContent.startsWith('G steps 0')")
    before = page.evaluate("document.getElementById('pg-canvas').toDataURL()")
    page.click("#pg-step-d")
    page.wait_for_function("document.getElementById('pg-steps').textContent === 'G steps 0, D steps 1'")
    page.fill("#pg-speed", "20")
    page.click("#pg-play")
    page.wait_for_function(
        "parseInt(document.getElementById('pg-steps').textContent.split(' ')[2]) >= 60", timeout=60_000
    )
    page.click("#pg-play")
    assert page.text_content("#pg-play") == "Play"
    assert page.evaluate("document.getElementById('pg-canvas').toDataURL()") != before
    assert "modes captured" in page.text_content("#pg-modes")
    assert "hidden=32" in page.url  # the options are in the URL


def test_browser_explorer_class_row_code_slider_and_caption(page, site):
    page.goto(site + "#explorer?model=1&point=3")
    page.wait_for_selector("#ex-controls select")
    page.wait_for_function(LOADED, arg=["#ex-image", "c.labels=0"])
    assert page.locator("#ex-plane img").count() == 16  # the seed plane
    first = page.evaluate(IMAGE_DATA, "#ex-image")
    page.select_option("#ex-controls select", "2")
    page.wait_for_function(LOADED, arg=["#ex-image", "c.labels=2"])
    assert page.evaluate(IMAGE_DATA, "#ex-image") != first
    assert "c.labels=2" in page.url

    page.select_option("#ex-model", "2")  # InfoGAN: move the continuous code's slider
    page.wait_for_function(LOADED, arg=["#ex-image", "c.codes.cont0=0"])
    before = page.evaluate(IMAGE_DATA, "#ex-image")
    page.evaluate("""() => { const s = document.querySelector('[data-control="c.codes.cont0"]');
                             s.value = 1.5; s.dispatchEvent(new Event('input')); }""")
    page.wait_for_function(LOADED, arg=["#ex-image", "c.codes.cont0=1.5"])
    assert page.evaluate(IMAGE_DATA, "#ex-image") != before

    page.select_option("#ex-model", "3")  # StackGAN: a caption, Stage-I beside Stage-II
    page.fill('[data-control="c.text"]', "a large blue bag at the center")
    page.press('[data-control="c.text"]', "Enter")
    page.wait_for_function(LOADED, arg=["#ex-image", "c.text=a+large+blue+bag"])
    page.wait_for_function(LOADED, arg=["#ex-stages img", "stage=0"])
    assert page.evaluate("document.querySelector('#ex-image').naturalWidth") == 32
    assert page.text_content("#ex-stages figcaption") == "Stage-I"


def test_browser_explorer_links_the_comparison_of_its_runs(page, site):
    page.goto(site + "#explorer?model=0")
    page.wait_for_selector("#ex-compare:not([hidden])")
    assert page.text_content("#ex-compare") == "compare the 5 served runs"
    with page.context.expect_page() as opened:
        page.click("#ex-compare")
    comparison = opened.value
    comparison.wait_for_load_state()
    assert comparison.url.endswith("/api/compare")
    assert comparison.locator("svg").count() >= 4  # the overlaid loss curves
    comparison.close()


def test_browser_explorer_projects_an_uploaded_image_and_edits_it(page, site, app, tmp_path):
    picture = tmp_path / "mine.png"
    drawn = get(app, "/api/image.png", model=1, point="11", **{"c.labels": 2})
    assert drawn.status == 200
    picture.write_bytes(drawn.body)  # one of the served G's own samples: its projection can come close
    page.goto(site + "#explorer?model=1&point=3")
    page.wait_for_selector("#ex-project-box:not([hidden])")
    page.set_input_files("#ex-project", str(picture))
    page.wait_for_function("document.getElementById('ex-project-status').textContent.includes('dB')", timeout=60000)
    assert page.text_content("#ex-point").endswith("z entries set")
    page.wait_for_function(LOADED, arg=["#ex-image", "point=0%7E0%3D"])  # the projected point: z entry 0 set
    assert page.evaluate("document.getElementById('ex-target').naturalWidth") > 0
    assert "point=0~0" in page.url.replace("%7E", "~")
    page.select_option("#ex-model", "4")  # an export of the plain run: it projects too; model 3 (captions) cannot
    page.wait_for_selector("#ex-project-box:not([hidden])")
    page.select_option("#ex-model", "3")
    page.wait_for_selector("#ex-project-box", state="hidden")


def test_browser_explorer_state_is_in_the_url(page, site, browser):
    url = site + "#explorer?model=0&point=5~2=1.25&a=5&b=9&A=1,2&B=3&C=4"
    page.goto(url)
    page.wait_for_function(LOADED, arg=["#ex-strip", "interpolate.png"])
    page.wait_for_function(LOADED, arg=["#ex-arithmetic", "arithmetic.png"])
    assert page.text_content("#ex-point") == "5~2=1.25"
    assert page.input_value('#ex-sliders input[type=number][data-dim="2"]') == "1.25"
    picture = page.evaluate(IMAGE_DATA, "#ex-image")
    other = browser.new_page()  # a colleague opens the same URL
    other.goto(url)
    other.wait_for_function(LOADED, arg=["#ex-image", "point=5"])
    assert other.evaluate(IMAGE_DATA, "#ex-image") == picture
    other.close()


def open_offline(page, path) -> list[str]:
    """Open a page from disk with every request that would leave it (not file: or data:) blocked; returns them."""
    outside = []

    def watch(route):
        url = route.request.url
        if url.startswith(("file:", "data:")):
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    page.route("**/*", watch)
    page.goto(path.as_uri())
    return outside


def test_browser_report_opens_from_disk_with_no_request_leaving(page, runs, tmp_path):
    from gankit.web.report import write_report

    outside = open_offline(page, write_report(runs["codes"], tmp_path / "report.html"))
    assert page.locator("img").count() >= 4
    assert page.evaluate("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
    assert page.locator("svg polyline").count() >= 4 and outside == []


def test_browser_comparison_opens_from_disk_with_no_request_leaving(page, runs, tmp_path):
    from gankit.web.compare import write_comparison

    outside = open_offline(page, write_comparison([runs["codes"], runs["labels"]], tmp_path / "compare.html"))
    assert page.locator("table").count() >= 1 and page.locator("svg polyline").count() >= 8
    assert page.evaluate("[...document.images].every(i => i.complete && i.naturalWidth > 0)")
    assert outside == []


def test_browser_explorer_shows_an_image_to_image_model_on_its_data(page, site):
    page.goto(site + "#explorer?model=5")
    page.wait_for_function(LOADED, arg=["#ex-pairs", "pairs.png"])
    assert page.is_hidden("#ex-seeds") and page.is_hidden("#ex-sample-panel") and page.is_visible("#ex-pairs-panel")
    first = page.evaluate(IMAGE_DATA, "#ex-pairs")
    page.click("#ex-pairs-next")
    page.wait_for_function(LOADED, arg=["#ex-pairs", "start=8"])
    assert page.evaluate(IMAGE_DATA, "#ex-pairs") != first and "start=8" in page.url


# ------------------------------------------------------------------------------------------ hostile run folders
# A downloaded run folder is a stranger's: its name (and everything in it) reaches the page only as text.

HOSTILE = "<img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def hostile_site(runs, tmp_path_factory):
    import shutil

    root = tmp_path_factory.mktemp("hostile")
    run = root / HOSTILE
    shutil.copytree(runs["plain"], run)
    export = root / '"><svg onload=alert(2)>.safetensors'
    shutil.copy(runs["plain"] / "generator.safetensors", export)
    server = make_server(build_app([run, export, runs["text"]]), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def wait_until(page, expression, arg=None, timeout=30.0):
    """wait_for_function without eval (allowed under the page's Content-Security-Policy): poll page.evaluate."""
    import time

    deadline = time.monotonic() + timeout
    while not page.evaluate(expression, arg):
        assert time.monotonic() < deadline, f"timed out waiting for {expression} {arg}"
        time.sleep(0.05)


@pytest.mark.parametrize("policy", ["served", "bypassed"])
def test_browser_hostile_names_and_captions_stay_text(browser, hostile_site, policy):
    """With the served policy, and without it (what the page itself does with a stranger's text)."""
    page = browser.new_page(bypass_csp=policy == "bypassed")
    dialogs, errors = [], []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(hostile_site + "#explorer?model=0")
    wait_until(page, LOADED, ["#ex-image", "point=0"])
    options = page.eval_on_selector_all("#ex-model option", "os => os.map(o => o.textContent)")
    assert options[0].startswith(HOSTILE + " (") and options[1].startswith('"><svg onload=alert(2)>')
    page.select_option("#ex-model", "2")  # a caption is a stranger's text too (and comes back in messages)
    page.fill('[data-control="c.text"]', "<img src=y onerror=alert(3)> a large blue bag")
    page.press('[data-control="c.text"]', "Enter")
    wait_until(page, LOADED, ["#ex-image", "c.text="])
    page.goto(hostile_site + "api/report?model=0")  # the report of a hostile run, as the server shows it
    page.wait_for_load_state()
    page.goto(hostile_site + "#explorer?model=1")
    wait_until(page, LOADED, ["#ex-image", "model=1"])
    assert dialogs == [] and errors == []
    assert page.locator("img[src=x], img[src=y], svg[onload], script:not([src])").count() == 0
    page.close()


def test_every_answer_carries_a_policy_and_foreign_hosts_are_refused(app):
    import http.client

    server = make_server(app, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]

    def ask(method, path, headers=None, body=None):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read()
        connection.close()
        return response, data

    try:
        page, _ = ask("GET", "/")
        policy = page.getheader("Content-Security-Policy")
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy.split("script-src")[1].split(";")[0]
        assert page.getheader("X-Frame-Options") == "DENY"
        report, html = ask("GET", "/api/report?model=0")
        assert report.status == 200 and "default-src 'none'" in report.getheader("Content-Security-Policy")
        assert "script-src" not in report.getheader("Content-Security-Policy")  # no script at all
        for host in ("localhost:1", f"127.0.0.1:{port}", f"[::1]:{port}"):
            assert ask("GET", "/api/models", {"Host": host})[0].status == 200, host
        refused, body = ask("GET", "/api/models", {"Host": f"attacker.example:{port}"})  # DNS rebinding
        assert refused.status == 403 and "does not answer to the host" in json.loads(body)["error"]
        form, body = ask("POST", "/api/playground", {"Content-Type": "text/plain"}, b'{"options": {}}')
        assert form.status == 415 and "application/json" in json.loads(body)["error"]
        deep, body = ask("POST", "/api/playground", {"Content-Type": "application/json"}, b"[" * 100_000)
        assert deep.status == 400 and "nests too deeply" in json.loads(body)["error"]
    finally:
        server.shutdown()
        server.server_close()


def test_browser_a_hash_typed_into_an_open_tab_switches_the_view(page, site):
    page.goto(site + "#playground?target=ring&hidden=32")
    page.wait_for_function("document.getElementById('pg-steps').textContent.startsWith('G steps 0')")
    page.evaluate("location.hash = '#explorer?model=0&point=7'")  # as if typed into the address bar
    page.wait_for_function(LOADED, arg=["#ex-image", "point=7"])
    assert page.is_hidden("#playground") and page.is_visible("#explorer")
    page.evaluate("location.hash = '#explorer?model=1&point=3&c.labels=2'")
    page.wait_for_function(LOADED, arg=["#ex-image", "c.labels=2"])
    assert page.input_value("#ex-model") == "1" and page.text_content("#ex-point") == "3"
