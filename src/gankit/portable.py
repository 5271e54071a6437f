"""Generators that leave Python: ONNX (``gankit export --format onnx``) and ``torch.export`` programs (``.pt2``),
each checked against gankit's own sampling.

    from gankit.portable import export_onnx, check_export
    report = export_onnx("runs/fm", "G.onnx")          # exports, then runs the parity check (raises if it fails)

**The graph** is G in eval mode (EMA weights with their re-estimated BatchNorm statistics when the run has an EMA,
as ``load_generator`` gives them) called on the arguments the condition protocol builds,
``G(*condition.generator_args(z, values))``: so every variant exports with no code of its own. Each argument
is a named graph input (names and meanings from ``Condition.argument_docs``): ``z``; ``labels`` for a
class-conditional G; InfoGAN's z with its codes joined in (the layout is in the description); a text G's caption
embedding and conditioning noise (the text encoder stays in Python: its tokenizer is string processing); an
image-conditioned G's ``source`` images. Arguments that are None or empty (pix2pix's z) are rebuilt inside the
graph. The batch axis is dynamic (and height / width for a fully convolutional super-resolution G). The one output
``image`` is (N, C, H, W) floats in [-1, 1] (``points`` (N, D) for a 2D G); ``to_uint8`` in the metadata says how
gankit turns it into pixels. The metadata (inputs, outputs, condition, source run, step, gankit version) is in the
ONNX model's ``metadata_props["gankit"]`` and in ``OUT.json`` beside the file.

**The parity check** feeds the same inputs to the exported graph (onnxruntime on the CPU, or the loaded
``torch.export`` program) and to gankit: the largest absolute difference of the floats against G in PyTorch, and
of the uint8 pixels against ``GeneratorPipeline.run`` (the function ``sample`` draws with). Limits: half a pixel
level on floats (1/255 in [-1, 1]; different convolution kernels sum in different orders, and deep nets with
large weights reach ~1e-3), 1 level on pixels (a rounding at a .5 boundary). The report goes to ``OUT.parity.json``;
a failure raises
:class:`ExportError` with the numbers.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import gankit
from gankit.data import to_uint8_images
from gankit.errors import GankitError
from gankit.files import atomic_output, atomic_write_text
from gankit.ownership import check_writable
from gankit.inference import GeneratorPipeline, load_generator
from gankit.networks import deterministic_sampling
from gankit.seeding import latents

FORMATS = ("onnx", "torch-export")
MAX_CHECK_SAMPLES = 4096  # the parity check runs G on this many samples twice: more says nothing new
FLOAT_TOLERANCE = (
    1 / 255
)  # half a pixel level (a level is 2 / 255 in [-1, 1]): a difference below it moves a pixel by at most 1
PIXEL_TOLERANCE = 1
TO_UINT8 = "pixels = clip(round((x + 1) * 127.5), 0, 255) as uint8, channels first (N, C, H, W)"


class ExportError(GankitError):
    """An export failed or its graph does not draw what gankit draws."""


def missing_extra(error: ImportError) -> ExportError:
    return ExportError(
        f"ONNX export needs the onnx extra ({error.name} is missing): pip install 'gankit[onnx]' "
        "(onnx, onnxscript, onnxruntime)"
    )


class GraphGenerator(nn.Module):
    """G as a graph: its real arguments are the graph's inputs; None and empty (no z) arguments are rebuilt."""

    def __init__(self, G: nn.Module, template: list[torch.Tensor | None]):
        super().__init__()
        self.G = G
        self.slots = [
            ("none", None)
            if a is None
            else ("empty", tuple(a.shape[1:]))
            if a.numel() == 0 and a.dim() > 1 and 0 in a.shape[1:]
            else ("input", None)
            for a in template
        ]

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        given = iter(inputs)
        n = inputs[0].shape[0]
        args = []
        for kind, shape in self.slots:
            args.append(
                None if kind == "none" else inputs[0].new_zeros((n, *shape)) if kind == "empty" else next(given)
            )
        return self.G(*args)


@dataclasses.dataclass
class Graph:
    module: GraphGenerator
    names: list[str]
    docs: list[dict[str, Any]]
    example: tuple[torch.Tensor, ...]


def graph_of(pipeline: GeneratorPipeline, n: int = 7, seed: int = 0) -> Graph:
    """The graph module, its input names and descriptions, and example inputs (samples 0..n-1 of ``seed``; an
    uncommon batch size, so that the exporter cannot mistake the batch axis for a constant dimension)."""
    condition = pipeline.condition
    values = condition.example_values(n, seed)
    args = list(condition.generator_args(latents(n, pipeline.latent_dim, seed).to(pipeline.device), values))
    docs = condition.argument_docs(pipeline.latent_dim)
    if len(docs) != len(args):
        raise ExportError(
            f"the condition documents {len(docs)} arguments but G takes {len(args)}: a bug in its variant"
        )
    module = GraphGenerator(pipeline.G.eval(), args).eval()
    kept = [(a, d) for a, d, (kind, _) in zip(args, docs, module.slots) if kind == "input"]
    return Graph(module, [d["name"] for _, d in kept], [d for _, d in kept], tuple(a for a, _ in kept))


def describe(pipeline: GeneratorPipeline, graph: Graph, source: str, out: Path, file_format: str) -> dict[str, Any]:
    inputs = []
    for name, doc, tensor in zip(graph.names, graph.docs, graph.example):
        shape: list[Any] = ["N", *tensor.shape[1:]]
        for axis, label in doc.get("dynamic", {}).items():
            shape[int(axis)] = label
        inputs.append(
            {
                "name": name,
                "shape": shape,
                "dtype": str(tensor.dtype).removeprefix("torch."),
                "description": doc["description"],
            }
        )
    with torch.no_grad():
        example = graph.module(*graph.example)
    images = pipeline.kind == "images"
    output = {
        "name": "image" if images else "points",
        "shape": ["N", *example.shape[1:]],
        "dtype": "float32",
        "range": [-1, 1] if images else None,
        "to_uint8": TO_UINT8 if images else None,
    }
    return {
        "format": f"gankit-{file_format}-1",
        "file": out.name,
        "gankit_version": gankit.__version__,
        "torch_version": torch.__version__,
        "source": source,
        "step": pipeline.step,
        "ema": pipeline.ema,
        "model": pipeline.config.model.get("name"),
        "condition": pipeline.condition.describe(),
        "settings": pipeline.settings,  # the condition's (StackGAN's conditioning noise scale)
        "inputs": inputs,
        "outputs": [output],
        "notes": "G in eval mode (BatchNorm running statistics, dropout off, also for a pix2pix G that samples "
        "with dropout in gankit); the batch axis is dynamic",
    }


def dynamic_shapes(graph: Graph) -> tuple[tuple[dict[int, Any], ...]]:
    """The dynamic axes of the graph's inputs, as torch.export wants them for ``forward(*inputs)``."""
    batch = torch.export.Dim("batch", min=1, max=65536)
    shapes = []
    for doc in graph.docs:
        axes = {0: batch}
        for axis, label in doc.get("dynamic", {}).items():
            axes[int(axis)] = torch.export.Dim(label, min=4, max=4096)
        shapes.append(axes)
    return (tuple(shapes),)


def export(
    source: str | Path | GeneratorPipeline,
    out: str | Path,
    file_format: str = "onnx",
    check: bool = True,
    samples: int = 8,
    seed: int = 0,
) -> dict[str, Any]:
    """Export a generator (a run folder, an export, a checkpoint or a pipeline) to ``out`` as ONNX or a
    ``torch.export`` program; write ``OUT.json`` (the metadata) and, with ``check``, run :func:`check_export`
    and write ``OUT.parity.json``. Returns the metadata (with ``parity`` and ``seconds``)."""
    if file_format not in FORMATS:
        raise ExportError(f"export format must be one of {', '.join(FORMATS)}, got {file_format!r}")
    if not 1 <= samples <= MAX_CHECK_SAMPLES:
        raise ExportError(f"the parity check compares 1 to {MAX_CHECK_SAMPLES:,} samples, got {samples:,}")
    out = Path(out)
    sidecar, parity = out.with_name(out.name + ".json"), out.with_name(out.name + ".parity.json")
    for path in (out, sidecar, parity):  # before any work: never over a run's own files
        check_writable(path)
    pipeline = source if isinstance(source, GeneratorPipeline) else load_generator(source, "cpu")
    label = "a GeneratorPipeline" if isinstance(source, GeneratorPipeline) else str(source)
    graph = graph_of(pipeline)
    meta = describe(pipeline, graph, label, out, file_format)
    meta["source_note"] = pipeline.source_note
    with atomic_output(out) as tmp:  # written, then checked, then renamed: a failure leaves any earlier file intact
        start = time.perf_counter()
        with quiet_exporter(), torch.no_grad():
            if file_format == "onnx":
                write_onnx(graph, tmp, meta)
            else:
                program = torch.export.export(graph.module, graph.example, dynamic_shapes=dynamic_shapes(graph))
                torch.export.save(program, str(tmp))
        meta["export_seconds"] = round(time.perf_counter() - start, 2)
        meta["bytes"] = tmp.stat().st_size
        if check:
            meta["parity"] = check_export(
                tmp, pipeline, samples, seed, file_format=file_format, report=parity, name=out.name
            )
    atomic_write_text(sidecar, json.dumps(meta, indent=2) + "\n")
    return meta


def export_onnx(
    source: str | Path | GeneratorPipeline, out: str | Path, check: bool = True, **options
) -> dict[str, Any]:
    """:func:`export` to ONNX."""
    return export(source, out, "onnx", check, **options)


class quiet_exporter:
    """The exporter's progress lines and warnings (torchvision ops it skips, deprecations) off the console."""

    def __enter__(self):
        self.loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch._dynamo", "torch.export", "onnxscript")]
        self.levels = [logger.level for logger in self.loggers]
        for logger in self.loggers:
            logger.setLevel(logging.ERROR)
        self.warnings = warnings.catch_warnings()
        self.warnings.__enter__()
        warnings.simplefilter("ignore")
        return self

    def __exit__(self, *exc):
        self.warnings.__exit__(*exc)
        for logger, level in zip(self.loggers, self.levels):
            logger.setLevel(level)
        return False


def write_onnx(graph: Graph, out: Path, meta: dict[str, Any]) -> None:
    try:
        import onnx
        import onnxscript  # noqa: F401 - the dynamo exporter needs it; say so before it fails deep inside
    except ImportError as error:
        raise missing_extra(error) from None
    try:
        program = torch.onnx.export(
            graph.module,
            graph.example,
            dynamo=True,
            input_names=graph.names,
            output_names=[meta["outputs"][0]["name"]],
            dynamic_shapes=dynamic_shapes(graph),
            verbose=False,
        )
    except Exception as error:  # the exporter's failures carry no single type
        raise ExportError(
            f"the ONNX exporter failed on this generator ({type(error).__name__}: {str(error)[:400]})"
        ) from error
    program.save(str(out))
    model = onnx.load(str(out))
    static = [i.name for i in model.graph.input if not i.type.tensor_type.shape.dim[0].dim_param]
    if static:
        raise ExportError(
            f"the ONNX graph's batch axis came out fixed for input(s) {', '.join(static)}: something in the "
            "network reads the batch size as a Python number (len(x)); please report it"
        )
    onnx.helper.set_model_props(model, {"gankit": json.dumps(meta), "gankit_version": gankit.__version__})
    model.doc_string = "gankit generator: " + "; ".join(
        f"{i['name']} {i['shape']}: {i['description']}" for i in meta["inputs"]
    )
    onnx.save(model, str(out))


def format_of(path: Path, file_format: str | None) -> str:
    """``file_format`` when given, else by the file's suffix: .onnx is ONNX, anything else a torch.export program."""
    return file_format or ("onnx" if path.suffix == ".onnx" else "torch-export")


def run_export(path: Path, inputs: tuple[torch.Tensor, ...], file_format: str | None = None) -> np.ndarray:
    """The exported file's output for ``inputs``: onnxruntime on the CPU for ONNX, the loaded program for a
    torch.export program (``file_format``; by default, from the suffix: .onnx or not)."""
    if format_of(path, file_format) == "onnx":
        try:
            import onnxruntime
        except ImportError as error:
            raise missing_extra(error) from None
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feed = {spec.name: tensor.cpu().numpy() for spec, tensor in zip(session.get_inputs(), inputs)}
        return session.run(None, feed)[0]
    with quiet_exporter():
        program = torch.export.load(str(path))
    with torch.no_grad():
        return program.module()(*inputs).numpy()


def check_export(
    path: str | Path,
    pipeline: GeneratorPipeline,
    samples: int = 8,
    seed: int = 0,
    file_format: str | None = None,
    report: Path | None = None,
    name: str | None = None,
) -> dict[str, Any]:
    """Samples 0..samples-1 of ``seed`` through the exported file and through gankit; raises ExportError when
    they differ beyond the limits. Returns the numbers (also written to ``report``, by default
    ``PATH.parity.json``; ``name``: the file's name in them, when ``path`` is a temporary file)."""
    path = Path(path)
    name = name or path.name
    report_path = report or path.with_name(path.name + ".parity.json")
    graph = graph_of(pipeline, samples, seed)
    exported = run_export(path, graph.example, file_format)
    with torch.no_grad(), deterministic_sampling():  # the graph has no sampling noise (pix2pix's sample_dropout)
        reference = graph.module(*graph.example).float().cpu().numpy()
        values = pipeline.condition.example_values(samples, seed)
        sampled = pipeline.run(latents(samples, pipeline.latent_dim, seed), values)
    float_diff = float(np.abs(exported - reference).max())
    numbers = {
        "file": name,
        "samples": samples,
        "seed": seed,
        "runtime": "onnxruntime CPU" if format_of(path, file_format) == "onnx" else "torch.export program",
        "max_abs_difference": float_diff,
        "float_tolerance": FLOAT_TOLERANCE,
    }
    if pipeline.kind == "images":
        ours = to_uint8_images(sampled).numpy().astype(np.int16)
        theirs = to_uint8_images(torch.from_numpy(exported)).numpy().astype(np.int16)
        numbers.update(
            {
                "max_pixel_difference": int(np.abs(ours - theirs).max()),
                "pixels_differing": int((ours != theirs).sum()),
                "pixels": int(ours.size),
                "pixel_tolerance": PIXEL_TOLERANCE,
            }
        )
    else:
        numbers["max_abs_difference_to_sampling"] = float(np.abs(sampled.numpy() - exported).max())
    numbers["passed"] = float_diff <= FLOAT_TOLERANCE and numbers.get("max_pixel_difference", 0) <= PIXEL_TOLERANCE
    atomic_write_text(report_path, json.dumps(numbers, indent=2) + "\n")
    if not numbers["passed"]:
        raise ExportError(
            f"{name}: the exported graph does not draw what gankit draws: max |difference| "
            f"{float_diff:.3g} (limit {FLOAT_TOLERANCE:g}), max pixel difference "
            f"{numbers.get('max_pixel_difference', 0)} (limit {PIXEL_TOLERANCE}); see {report_path}"
        )
    return numbers
