"""The CUDA path (issue 33): every test here needs a GPU and is skipped without one. ``benchmarks/device_check.py``
runs them (``pytest -m cuda``) on the lent GPU machine; on a CPU-only machine they report as skipped.

Tolerances, CUDA against the CPU path (cuDNN convolutions run in TF32 by default on Ampere and later, about three
decimal digits): samples within 2e-2 in [-1, 1] images, FID and KID within 2% (relative) of the CPU's, the ONNX
export within the export check's own limits of the CUDA pipeline's samples.

``GANKIT_DEVICE_TESTS_ON=cpu`` runs the same tests on the CPU (gloo for NCCL): how their own logic is checked on
a machine without a GPU (``benchmarks/device_check.py --device cpu``).
"""

import json
import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import assert_resume_is_exact, quiet, tiny_overrides, train_variant_runs, variant_options

from gankit import load_config, load_generator, train
from gankit.data import BatchStream, load_dataset
from gankit.data.packed import pack
from gankit.files import read_tensors
from gankit.formats import FORMAT_CHECKPOINT, list_checkpoints

# cuBLAS is deterministic only with a fixed workspace; it reads this when its first handle is made, so it is set
# before any test runs (collection imports every test file first).
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")

DEVICE = os.environ.get("GANKIT_DEVICE_TESTS_ON", "cuda")
pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(
        DEVICE == "cuda" and not torch.cuda.is_available(), reason="needs a CUDA device (run on a GPU machine)"
    ),
]

SAMPLE_TOLERANCE, SCORE_TOLERANCE = 2e-2, 0.02
ACGAN = ["model.num_classes=null", 'model.d_conditioning="none"', "model.d_aux_classifier=true", "objective.name=acgan"]
BIGAN = ["model.name=bigan", "model.e_width=8", "model.z_hidden=16", "objective.name=bigan"]


@pytest.fixture
def deterministic():
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(False)


def last_row(run: Path) -> dict:
    return json.loads((run / "train_log.jsonl").read_text().splitlines()[-1])


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_every_variant_trains_20_steps_on_cuda(tmp_path, captioned, precision):
    kinds = variant_options(tmp_path)
    kinds["acgan"] = kinds["plain"] + ACGAN
    kinds["bigan"] = kinds["plain"] + BIGAN
    runs = train_variant_runs(
        tmp_path,
        captioned,
        kinds,
        device=DEVICE,
        precision=precision,
        steps=20,
        log_every=5,
        sample_every=10,
        checkpoint_every=10,
    )
    assert set(runs) == {*kinds, "text"}
    for kind, run in runs.items():
        row = last_row(run)
        assert row["step"] == 20, kind
        assert math.isfinite(row["d_loss"]) and math.isfinite(row["g_loss"]), (kind, row)
        config = json.loads((run / "config.json").read_text())
        assert config["train"]["device"] == DEVICE and config["train"]["precision"] == precision
        _, path = list_checkpoints(run / "checkpoints")[-1]
        tensors, _ = read_tensors(path, FORMAT_CHECKPOINT)
        for name, tensor in tensors.items():
            if tensor.is_floating_point():
                assert torch.isfinite(tensor).all(), (kind, name)
        pipeline = load_generator(run, device=DEVICE)
        with torch.no_grad():  # G on the device; its output comes back to the CPU
            out = pipeline.run(torch.randn(8, pipeline.latent_dim), pipeline.condition.example_values(8, 0))
        assert out.shape[0] == 8 and torch.isfinite(out).all(), kind


def test_resume_is_exact_on_cuda_with_deterministic_algorithms(tmp_path, tiny_npz, deterministic):
    base = tiny_overrides(tiny_npz) + ACGAN + [f"train.device={DEVICE}", "train.ema_decay=0.9"]
    assert assert_resume_is_exact(tmp_path, base) == (4, 4)


def test_sampling_evaluation_and_onnx_export_of_a_cuda_run_match_the_cpu(tmp_path):
    from gankit.metrics.evaluation import evaluate_generator
    from gankit.portable import check_export, export

    options = [
        "data.name=digits",
        "data.resolution=32",
        "model.g_width=16",
        "model.d_width=16",
        "train.steps=20",
        "train.batch_size=32",
        "train.log_every=10",
        "train.sample_every=20",
        "train.checkpoint_every=20",
        "train.tensorboard=false",
        "train.ema_decay=0.9",
        f"train.device={DEVICE}",
    ]
    run = train(load_config(None, options), tmp_path / "run", progress=False, log=quiet).run_dir
    on_gpu, on_cpu = load_generator(run, device=DEVICE), load_generator(run, device="cpu")
    images_gpu, images_cpu = on_gpu.sample(64, seed=3), on_cpu.sample(64, seed=3)
    # uint8 images: a TF32 difference moves a pixel by at most a few levels
    diff = np.abs(images_gpu.astype(np.int16) - images_cpu.astype(np.int16))
    assert diff.max() <= math.ceil(SAMPLE_TOLERANCE * 127.5), diff.max()
    scores = {}
    for key, device, pipeline in (("device", DEVICE, on_gpu), ("cpu", "cpu", on_cpu)):
        scores[key] = evaluate_generator(
            pipeline,
            ["fid", "kid"],
            num_samples=500,
            reference_split="test",
            num_reference=360,
            extractor={"name": "evaluator", "weights": "digits", "device": device},
            use_cache=False,
        )
    for metric in ("fid", "kid"):
        gpu, cpu = scores["device"]["metrics"][metric], scores["cpu"]["metrics"][metric]
        assert abs(gpu - cpu) <= SCORE_TOLERANCE * abs(cpu) + 1e-6, (metric, gpu, cpu)
    export(run, tmp_path / "g.onnx")  # loads the CUDA run's weights on the CPU; its parity check raises on failure
    check_export(tmp_path / "g.onnx", on_gpu, report=tmp_path / "gpu.parity.json")  # the graph against CUDA G


def test_packed_data_trains_on_cuda_exactly_as_in_memory_data(tmp_path, tiny_npz, deterministic):
    pack({"name": "npz", "path": str(tiny_npz)}, tmp_path / "packed", progress=False, log=quiet)
    packed = load_dataset({"name": "packed", "path": str(tmp_path / "packed")}).to(DEVICE)
    memory = load_dataset({"name": "npz", "path": str(tiny_npz)}).to(DEVICE)
    assert packed.memory_mapped and packed.x.device.type == "cpu" and memory.x.device.type == DEVICE
    stream = BatchStream(packed, 8, seed=1)
    for k in range(10):  # pinned host memory, copied without blocking, then used on the same stream
        batch = packed.model_input(stream.indices(k), channels_last=True)
        assert batch.device.type == DEVICE and batch.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(batch, memory.model_input(stream.indices(k), channels_last=True))
    runs = {}
    for name, data in (("packed", ["data.name=packed", f"data.path={tmp_path / 'packed'}"]), ("npz", [])):
        runs[name] = train(
            load_config(None, tiny_overrides(tiny_npz, steps=6) + data + [f"train.device={DEVICE}"]),
            tmp_path / name,
            progress=False,
            log=quiet,
        ).run_dir
    a, b = (read_tensors(list_checkpoints(r / "checkpoints")[-1][1], FORMAT_CHECKPOINT)[0] for r in runs.values())
    for key in a:
        if not key.startswith("rng."):
            assert torch.equal(a[key], b[key]), key


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_nccl_collectives_in_one_process():
    """gankit's collectives (gradient averaging, broadcast, gathers, the identity check) on an NCCL group of one
    process: the only NCCL group one GPU can hold. A group of one makes every collective an identity."""
    import torch.distributed as dist

    from gankit.training.distributed import Ranks, average, broadcast_object, check_identical, gather_rows

    class OneProcessGroup(Ranks):
        @property
        def shared(self) -> bool:  # take the collective paths even though the group holds one process
            return True

    store = dist.TCPStore("127.0.0.1", free_port(), 1, is_master=True)
    dist.init_process_group("nccl" if DEVICE == "cuda" else "gloo", store=store, rank=0, world_size=1)
    try:
        ranks = OneProcessGroup()
        net = torch.nn.Linear(4, 3).to(DEVICE)
        net(torch.randn(2, 4, device=DEVICE)).sum().backward()
        before = [p.grad.clone() for p in net.parameters()]
        stats = [torch.tensor(1.5, device=DEVICE)]
        assert average(ranks, net.parameters(), stats, stop=False) is False
        for p, g in zip(net.parameters(), before):
            assert torch.equal(p.grad, g)
        assert stats[0].item() == 1.5
        assert broadcast_object(ranks, {"a": 1}) == {"a": 1}
        rows = np.arange(12, dtype=np.float32).reshape(4, 3)
        assert np.array_equal(gather_rows(ranks, rows), rows)
        check_identical(ranks, {"net": net}, step=1)
    finally:
        dist.destroy_process_group()


def test_torchrun_launches_a_cuda_run(tmp_path, tiny_npz):
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1", "-m", "gankit"]
    command += ["train", "dcgan-digits", "--out", str(tmp_path / "run"), "--quiet"]
    for option in tiny_overrides(tiny_npz) + [f"train.device={DEVICE}"]:
        command += ["--set", option]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert last_row(tmp_path / "run")["step"] == 4
    assert json.loads((tmp_path / "run" / "config.json").read_text())["train"]["device"] == DEVICE
