"""``gankit serve``: the playground, the explorer and the run reports behind one local web page.

Every endpoint is a thin shell over library functions (``gankit.web.playground``, ``gankit.analysis.explore``,
``gankit.web.report``): it checks and bounds its inputs, calls one function and encodes the answer (JSON, PNG,
HTML). Run folders and exports are opened read-only; the report of a run is made in memory. The page itself is
hand-written HTML/JS/CSS shipped in ``gankit/web/static`` and nothing is fetched from elsewhere.

Explorer URLs name a picture completely (model, points ``SEED~I=V``, ``c.<control>`` inputs), so the same
URL gives the same pixels.
"""

from __future__ import annotations

import base64
import binascii
import collections
import dataclasses
import io
import itertools
import threading
from importlib import resources
from pathlib import Path

import numpy as np

from gankit.analysis.explore import (
    MAX_VALUE,
    Point,
    apply_settings,
    arithmetic_panel,
    data_pairs,
    held_out_data,
    interpolate,
    needs_input,
    noise,
    parse_controls,
    render,
    seed_plane,
)
from gankit.analysis.project import output_shape, project, read_upload
from gankit.errors import GankitError
from gankit.formats import split_source
from gankit.images import image_grid, scatter_plot
from gankit.inference import GeneratorPipeline, load_generator
from gankit.web.compare import build_comparison
from gankit.web.playground import LOSS_NAMES, MAX_STEPS_PER_CALL, TARGETS, Playground, PlaygroundOptions
from gankit.web.report import build_report
from gankit.web.server import App, HTTPError, Request, Response

PROJECT_STEPS, PROJECT_RESTARTS = 200, 4  # an upload's projection: seconds on a CPU for the small presets

STATIC = {
    "index.html": "text/html; charset=utf-8",
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
MAX_SESSIONS = 16  # playgrounds kept; the least recently used goes first
MAX_POINTS_PER_CONCEPT = 16
CONTROL_PREFIX = "c."


@dataclasses.dataclass
class Model:
    id: str
    path: Path
    pipeline: GeneratorPipeline
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    data: object = None  # the run's data (test split when it has one), loaded on first use: input images

    def pair_data(self):
        """The data an image-conditioned G's inputs and targets come from: the config's, test split if any."""
        if self.data is None:
            try:
                self.data = held_out_data(self.pipeline.config.data)
            except (GankitError, OSError) as error:
                raise HTTPError(400, f"the data this generator was trained on is not readable here ({error})") from None
        return self.data

    @property
    def folder(self) -> Path:
        """The run folder or file the path names (RUN@last names RUN)."""
        return split_source(self.path)[0]

    @property
    def is_run(self) -> bool:
        return self.folder.is_dir() and (self.folder / "config.json").is_file()

    def describe(self) -> dict:
        p = self.pipeline
        return {
            "id": self.id,
            "name": self.path.name,
            "path": str(self.path),
            "source_note": p.source_note,
            "kind": p.kind,
            "summary": p.condition.summary(),
            "model": p.config.model.get("name"),
            "data": p.config.data.get("name"),
            "step": p.step,
            "ema": p.ema,
            "latent_dim": p.latent_dim,
            "noise_dims": p.condition.noise_dims(p.latent_dim),
            "controls": p.condition.controls(),
            "stages": list(p.stage_names),
            "report": self.is_run,
            "projects": p.kind == "images" and not p.condition.needs_input,  # POST /api/project takes images
        }


def png(picture) -> Response:
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return Response(buffer.getvalue(), "image/png")


def build_app(paths: list[str | Path] = (), device: str = "cpu") -> App:
    """The web app over the run folders / exports ``paths`` (each loaded once, now: a bad one fails here)."""
    models = {str(i): Model(str(i), Path(p), load_generator(p, device)) for i, p in enumerate(paths)}
    sessions: collections.OrderedDict[str, Playground] = collections.OrderedDict()
    session_ids = itertools.count(1)
    sessions_lock = threading.Lock()
    app = App()
    app.models = list(models.values())

    # ------------------------------------------------------------------ the page
    def static(name: str):
        def handler(request: Request) -> Response:
            body = resources.files("gankit.web").joinpath("static", name).read_bytes()
            return Response(body, STATIC[name])

        return handler

    app.route("GET", "/")(static("index.html"))
    for name in STATIC:
        app.route("GET", f"/static/{name}")(static(name))

    # ------------------------------------------------------------------ explorer
    def model_of(request: Request) -> Model:
        key = request.text("model", "0" if models else None, 8)
        if key not in models:
            raise HTTPError(404, f"no model {key!r}; this server has {len(models)} (ids 0..{len(models) - 1})")
        return models[key]

    def point_of(request: Request, name: str) -> Point:
        return Point.parse(request.text(name, max_length=4096))

    def points_of(request: Request, name: str) -> list[Point]:
        text = request.text(name, max_length=8192)
        points = [Point.parse(p) for p in text.split(",") if p]
        if not 1 <= len(points) <= MAX_POINTS_PER_CONCEPT:
            raise HTTPError(400, f"{name} must list 1 to {MAX_POINTS_PER_CONCEPT} samples, got {len(points)}")
        return points

    def draw(request: Request, images_only: bool, make) -> Response:
        """Parse the controls, apply the settings and draw, holding the model (settings are per pipeline)."""
        model = model_of(request)
        raw = {k[len(CONTROL_PREFIX) :]: v for k, v in request.query.items() if k.startswith(CONTROL_PREFIX)}
        given, settings = parse_controls(model.pipeline.condition, raw)
        missing = needs_input(model.pipeline, given)
        if missing == ["images"]:
            raise HTTPError(400, "this generator draws from input images: /api/pairs.png shows it on its data")
        if missing:
            raise HTTPError(400, f"this generator needs {', '.join(missing)} (a c.{missing[0]}=... parameter)")
        if images_only and model.pipeline.kind != "images":
            raise HTTPError(400, "this generator makes points, not images: see /api/image.png for its scatter plot")
        with model.lock:
            apply_settings(model.pipeline, settings)
            return make(model.pipeline, given)

    @app.route("GET", "/api/models")
    def list_models(request: Request) -> Response:
        return Response.of_json([m.describe() for m in models.values()])

    @app.route("GET", "/api/latent")
    def latent(request: Request) -> Response:
        model, point = model_of(request), point_of(request, "point")
        z = noise(model.pipeline, point)[0, : model.pipeline.condition.noise_dims(model.pipeline.latent_dim)]
        return Response.of_json({"point": point.format(), "z": [round(float(v), 5) for v in z]})

    @app.route("GET", "/api/image.png")
    def image(request: Request) -> Response:
        point = point_of(request, "point")
        size = request.integer("size", 1, 1, 1024)  # upscale (nearest) to at least this many pixels a side
        stage = request.integer("stage", -1, -1, 15)  # which of G's stages; -1: the last

        def make(pipeline, given):
            if pipeline.kind != "images":
                return png(scatter_plot(pipeline.sample(2000, seed=point.seed, **given)))
            return png(image_grid(render(pipeline, [point], given, stage), padding=0, min_cell=size))

        return draw(request, False, make)

    @app.route("GET", "/api/plane.png")
    def plane(request: Request) -> Response:
        seed = request.integer("seed", 0, 0, 2**31 - 1)
        count = request.integer("count", 16, 1, 64)
        columns = request.integer("columns", 8, 1, 16)
        return draw(
            request,
            True,
            lambda p, given: png(image_grid(seed_plane(p, seed, count, given), columns=columns, min_cell=48)),
        )

    @app.route("GET", "/api/interpolate.png")
    def interpolation(request: Request) -> Response:
        a, b = point_of(request, "a"), point_of(request, "b")
        steps = request.integer("steps", 9, 2, 32)
        mode = request.choice("mode", "slerp", ("slerp", "linear"))
        return draw(
            request,
            True,
            lambda p, given: png(image_grid(interpolate(p, a, b, steps, mode, given), columns=steps, min_cell=64)),
        )

    @app.route("GET", "/api/arithmetic.png")
    def vector_arithmetic(request: Request) -> Response:
        concepts = [points_of(request, name) for name in ("A", "B", "C")]
        variants = request.integer("variants", 4, 0, 8)

        def make(pipeline, given):
            panel = arithmetic_panel(pipeline, *concepts, given=given, variants=variants)
            return png(image_grid(panel, columns=len(panel), min_cell=64))

        return draw(request, True, make)

    @app.route("GET", "/api/pairs.png")
    def pairs(request: Request) -> Response:
        model = model_of(request)
        start = request.integer("start", 0, 0, 10**9)
        count = request.integer("count", 8, 1, 32)
        with model.lock:
            images, columns = data_pairs(model.pipeline, model.pair_data(), start, count)
        return png(image_grid(images, columns=columns, min_cell=64))

    @app.route("GET", "/api/report")
    def report(request: Request) -> Response:
        model = model_of(request)
        if not model.is_run:
            raise HTTPError(404, f"{model.path} is an export, not a run folder: it has no report")
        return Response.document(build_report(model.folder))

    @app.route("POST", "/api/project")
    def project_image(request: Request) -> Response:
        """An uploaded image ({"image": the file's bytes in base64, or a data: URL}) projected into the model's
        latent space (``gankit project``, fewer steps): the point and control settings that draw it again in the
        explorer, and how near the projection came."""
        model = model_of(request)
        pipeline = model.pipeline
        if pipeline.kind != "images" or pipeline.condition.needs_input:
            raise HTTPError(
                400,
                f"projection needs a generator that draws images on its own; this is {pipeline.condition.summary()}",
            )
        text = request.json().get("image")
        if not isinstance(text, str) or not text:
            raise HTTPError(400, 'send the image as {"image": the file in base64 (or a data: URL)}')
        try:
            data = base64.b64decode(text.split(",", 1)[1] if text.startswith("data:") else text, validate=True)
        except (binascii.Error, ValueError, IndexError):
            raise HTTPError(400, "the image is not valid base64") from None
        with model.lock:
            channels, size = output_shape(pipeline)
            targets = read_upload(data, channels, size)
            found = project(pipeline, targets, PROJECT_STEPS, PROJECT_RESTARTS, progress=False)
        values = None if found.values is None else found.values[0]
        z, settings = pipeline.condition.explorer_state(found.inputs[0], values)
        z = np.clip(z[: pipeline.condition.noise_dims(pipeline.latent_dim)], -MAX_VALUE, MAX_VALUE)
        point = Point.parse(Point(0, {i: float(v) for i, v in enumerate(z)}).format())  # as the page will send it
        given, _ = parse_controls(pipeline.condition, {k: str(v) for k, v in settings.items()})
        with model.lock:
            shown = render(pipeline, [point], given)[0].astype(np.float64)  # what the explorer will draw
        error = max(float(np.mean((shown - found.targets[0]) ** 2)), 1e-10)
        return Response.of_json(
            {
                "point": point.format(),
                "settings": settings,
                "psnr": round(float(found.psnr[0]), 2),
                "psnr_shown": round(float(10 * np.log10(255.0**2 / error)), 2),
                "seconds": round(found.seconds, 2),
                "steps": PROJECT_STEPS,
                "restarts": PROJECT_RESTARTS,
            }
        )

    @app.route("GET", "/api/compare")
    def compare(request: Request) -> Response:
        """The comparison page (``gankit compare``) of the served run folders, or of ``models=0,2,...``."""
        wanted = request.text("models", "", 512)
        keys = [k for k in wanted.split(",") if k] if wanted else [k for k, m in models.items() if m.is_run]
        unknown = [k for k in keys if k not in models]
        if unknown:
            raise HTTPError(404, f"no model {unknown[0]!r}; this server has {len(models)} (ids 0..{len(models) - 1})")
        exports = [models[k].path.name for k in keys if not models[k].is_run]
        if exports:
            raise HTTPError(404, f"{exports[0]} is an export, not a run folder: only run folders can be compared")
        folders = list(dict.fromkeys(models[k].folder for k in keys))
        if len(folders) < 2:
            raise HTTPError(404, f"a comparison needs two run folders; this server serves {len(folders)}")
        return Response.document(build_comparison(folders))

    # ------------------------------------------------------------------ playground
    @app.route("GET", "/api/playground/choices")
    def choices(request: Request) -> Response:
        defaults = dataclasses.asdict(PlaygroundOptions())
        return Response.of_json(
            {
                "targets": TARGETS,
                "losses": list(LOSS_NAMES),
                "defaults": defaults,
                "max_steps_per_call": MAX_STEPS_PER_CALL,
            }
        )

    def session_of(key) -> Playground:
        with sessions_lock:
            if not isinstance(key, str) or key not in sessions:
                raise HTTPError(
                    404, f"no playground {key!r} (it may have been closed for a newer one): start a new one"
                )
            sessions.move_to_end(key)
            return sessions[key]

    def view_of(game: Playground, body: dict) -> dict:
        resolution = body.get("resolution", 40)
        if not isinstance(resolution, int):
            raise HTTPError(400, "resolution must be an integer")
        return game.view(resolution)

    @app.route("POST", "/api/playground")
    def new_playground(request: Request) -> Response:
        body = request.json()
        options = body.get("options", {})
        if not isinstance(options, dict):
            raise HTTPError(400, "options must be a JSON object")
        game = Playground(options)
        with sessions_lock:
            key = str(next(session_ids))
            sessions[key] = game
            while len(sessions) > MAX_SESSIONS:
                sessions.popitem(last=False)
        return Response.of_json({"id": key, "view": view_of(game, body)})

    @app.route("POST", "/api/playground/step")
    def step(request: Request) -> Response:
        body = request.json()
        game = session_of(body.get("id"))
        steps, mode = body.get("steps", 1), body.get("mode", "both")
        if not isinstance(steps, int) or not isinstance(mode, str):
            raise HTTPError(400, "steps must be an integer and mode a string")
        game.step(mode, steps)
        return Response.of_json({"id": body["id"], "view": view_of(game, body)})

    return app
