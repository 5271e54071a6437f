"""Several processes, one run (issue 18), on the CPU with gloo, launched the way users launch it: torchrun.

Every run here is a real ``torchrun ... -m gankit train`` in a child process (about 10 s each)."""

import json
import os
import signal
import socket
import subprocess
import sys

import pytest
import torch
from helpers import tiny_overrides

from gankit import load_config, train
from gankit.files import read_tensors
from gankit.formats import FORMAT_CHECKPOINT, list_checkpoints

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "GANKIT_DIST_TIMEOUT": "120"}

pytestmark = pytest.mark.slow  # every test here launches torchrun


def gankit_args(out, overrides, *extra):
    args = ["-m", "gankit", "train", "dcgan-digits", "--out", str(out), "--quiet", *extra]
    for option in overrides:
        args += ["--set", option]
    return args


def torchrun(out, overrides, nproc=2, extra=(), launcher=("--standalone",)):
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        *launcher,
        f"--nproc_per_node={nproc}",
        *gankit_args(out, overrides, *extra),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=ENV)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def last_tensors(run):
    return read_tensors(list_checkpoints(run / "checkpoints")[-1][1], FORMAT_CHECKPOINT)


def test_two_processes_follow_the_one_process_trajectory_without_batchnorm(tmp_path, tiny_npz):
    """An MLP without BatchNorm or dropout: 2 processes with 4 samples each take the same steps as one
    process with the global batch of 8 (same batches, same z), to float rounding."""
    overrides = tiny_overrides(tiny_npz, steps=4) + [
        "model.name=mlp",
        "model.dropout=0",
        "model.g_hidden=[32]",
        "model.d_hidden=[32]",
        "model.latent_dim=8",
    ]
    overrides = [o for o in overrides if not o.startswith(("model.g_width", "model.d_width", "model.latent_dim=16"))]
    torchrun(tmp_path / "two", overrides)
    train(load_config("dcgan-digits", overrides), tmp_path / "one", progress=False, log=lambda s: None)
    (two, meta), (one, _) = last_tensors(tmp_path / "two"), last_tensors(tmp_path / "one")
    assert json.loads(meta["run"])["world_size"] == 2 and "rng.rank1.torch" in two
    for name in one:
        if name.startswith(("G.", "D.")):
            assert torch.allclose(two[name], one[name], atol=1e-5, rtol=1e-4), name
    changed = [n for n in one if n.startswith("G.") and not torch.equal(one[n], two[n])]
    assert len(changed) < len([n for n in one if n.startswith("G.")])  # equal up to rounding, not identical by accident


def test_a_two_process_dcgan_with_batchnorm_resumes_exactly(tmp_path, tiny_npz):
    """Ranks stay identical (checked by the trainer at every checkpoint: a difference would stop the run),
    losses stay finite, and 2 + resume + 2 steps equal 4 steps bit for bit, every rank's RNG included."""
    overrides = tiny_overrides(tiny_npz, steps=4) + ["train.ema_decay=0.9"]
    torchrun(tmp_path / "straight", overrides)
    torchrun(tmp_path / "split", [o.replace("train.steps=4", "train.steps=2") for o in overrides])
    torchrun(tmp_path / "split", overrides, extra=["--resume"])
    (a, _), (b, _) = last_tensors(tmp_path / "straight"), last_tensors(tmp_path / "split")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    rows = (tmp_path / "straight" / "train_log.jsonl").read_text().splitlines()
    assert len(rows) == 2 and "NaN" not in "".join(rows)


def test_synchronized_batchnorm_follows_the_one_process_trajectory(tmp_path, tiny_npz):
    """train.sync_batchnorm: a DCGAN with BatchNorm in G and D under 2 processes (4 samples each) normalizes
    with the global batch's statistics and so takes one process's steps on the batch of 8, running statistics
    included (the unsynchronized default does not: the same check fails on it)."""
    overrides = tiny_overrides(tiny_npz, steps=3)
    torchrun(tmp_path / "synced", overrides + ["train.sync_batchnorm=true"])
    torchrun(tmp_path / "local", overrides)
    train(load_config("dcgan-digits", overrides), tmp_path / "one", progress=False, log=lambda s: None)
    synced, local, one = (last_tensors(tmp_path / name)[0] for name in ("synced", "local", "one"))
    weights = [n for n in one if n.startswith(("G.", "D.")) and one[n].is_floating_point()]
    assert any("running_var" in n for n in weights)

    def far(run):
        return [n for n in weights if not torch.allclose(run[n], one[n], atol=1e-4, rtol=1e-3)]

    assert far(synced) == []
    assert any("running_mean" in n for n in far(local))


def test_two_nodes_rendezvous_on_one_machine_and_write_one_run_folder(tmp_path, tiny_npz, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "run"
    launches = []
    for node in (0, 1):
        launcher = (
            "--nnodes=2",
            f"--node_rank={node}",
            "--rdzv_backend=c10d",
            f"--rdzv_endpoint=127.0.0.1:{port}",
            "--rdzv_id=gankit-test",
            # both agents run on this machine, so both would take themselves for the store's host and race for
            # the port; on real nodes only the endpoint's machine does
            f"--rdzv_conf=is_host={'true' if node == 0 else 'false'}",
        )
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            *launcher,
            "--nproc_per_node=1",
            *gankit_args(out, tiny_overrides(tiny_npz, steps=2)),
        ]
        launches.append(
            subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ENV, start_new_session=True
            )
        )
    try:
        outputs = [launch.communicate(timeout=180)[0] for launch in launches]
    except subprocess.TimeoutExpired:  # stop both launchers and their workers, and show what they said
        for launch in launches:
            os.killpg(launch.pid, signal.SIGKILL)
        tails = [f"node {node}:\n{launch.communicate()[0][-3000:]}" for node, launch in enumerate(launches)]
        pytest.fail("the two-node run did not finish in 180 s\n" + "\n".join(tails))
    assert all(launch.returncode == 0 for launch in launches), "\n".join(o[-2000:] for o in outputs)
    assert [step for step, _ in list_checkpoints(out / "checkpoints")] == [2]
    assert "2 processes: batch 8 global, 4 per process" in "".join(outputs)
    from gankit.cli import main

    assert main(["info", str(out)]) == 0
    training = json.loads(capsys.readouterr().out)["training"]
    assert training["processes"] == 2 and training["batch_size"] == 8 and training["batch_per_process"] == 4


def test_a_global_batch_that_does_not_divide_is_refused(tmp_path, tiny_npz):
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        *gankit_args(tmp_path / "run", tiny_overrides(tiny_npz, steps=2, batch_size=7)),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=ENV)
    assert done.returncode != 0
    assert "train.batch_size (7) is the global batch and must divide evenly among the 2 processes" in done.stderr


@pytest.mark.parametrize("world", [1])
def test_one_process_is_unchanged_by_the_distributed_code(tmp_path, tiny_npz, world):
    """Without torchrun's environment no process group is made and checkpoints hold no per-rank entries."""
    train(load_config(None, tiny_overrides(tiny_npz, steps=2)), tmp_path / "run", progress=False, log=lambda s: None)
    tensors, metadata = last_tensors(tmp_path / "run")
    assert json.loads(metadata["run"])["world_size"] == 1 and not any(k.startswith("rng.rank") for k in tensors)
    assert not torch.distributed.is_initialized()


SHARDED_EVALUATION = """
import json, sys
import torch.distributed as dist
from gankit.inference import load_generator
from gankit.metrics.evaluation import evaluate_generator
from gankit.training.distributed import join, leave, shard
ranks, _ = join("cpu")
row = evaluate_generator(load_generator(sys.argv[1]), "fid,prdc", 301, "train", 500, 3, shard=shard(ranks))
json.dump(row["metrics"], open(f"{sys.argv[2]}-{ranks.rank}.json", "w"))
leave(ranks)
"""


def test_sharded_evaluation_gives_the_one_process_numbers(tmp_path):
    from gankit.inference import load_generator
    from gankit.metrics.evaluation import evaluate_generator

    run = tmp_path / "ring"
    config = load_config(
        "gan-mlp-ring",
        [
            "train.steps=20",
            "train.batch_size=64",
            "train.tensorboard=false",
            "train.log_every=10",
            "data.num_points=2000",
        ],
    )
    train(config, run, progress=False, log=lambda s: None)
    script = tmp_path / "evaluate.py"
    script.write_text(SHARDED_EVALUATION)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(script),
        str(run),
        str(tmp_path / "metrics"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=ENV)
    assert done.returncode == 0, done.stderr[-3000:]
    one = evaluate_generator(load_generator(run), "fid,prdc", 301, "train", 500, 3)["metrics"]
    for rank in (0, 1):  # 301 samples: 150 on one process, 151 on the other
        shared = json.loads((tmp_path / f"metrics-{rank}.json").read_text())
        assert shared.keys() == one.keys()
        for key, value in one.items():
            assert shared[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key


@pytest.mark.parametrize(
    "objective",
    [
        ["objective.name=infogan"],
        ["objective.name=acgan", "model.num_classes=null", "model.d_conditioning=none", "model.d_aux_classifier=true"],
    ],
)
def test_variants_with_d_heads_train_under_two_processes(tmp_path, tiny_npz, objective):
    """InfoGAN's Q head and AC-GAN's class head: the ranks stay identical (checked at every checkpoint)."""
    torchrun(tmp_path / "run", tiny_overrides(tiny_npz, steps=2) + objective)
    tensors, metadata = last_tensors(tmp_path / "run")
    head = "q_head" if objective[0].endswith("infogan") else "aux_head"
    assert json.loads(metadata["run"])["world_size"] == 2 and any(k.startswith("D.") and head in k for k in tensors)


def test_stackgan_stage1_and_stage2_train_under_two_processes(tmp_path):
    """Text conditioning, conditioning augmentation, EMA, and Stage-II's frozen Stage-I: each stage runs with
    2 processes, and the Stage-I inside Stage-II is the Stage-I export, unchanged."""
    from gankit.data import load_dataset
    from gankit.data.captions import write_captioned_dataset
    from gankit.inference import load_generator
    from gankit.networks.text_encoders import (
        ImageEncoder,
        Vocabulary,
        WordGRUEncoder,
        WordGRUOptions,
        save_text_encoder,
    )

    write_captioned_dataset(tmp_path / "caps", train=48, test=16, resolution=32, progress=lambda s: None)
    torch.manual_seed(0)
    vocabulary = Vocabulary.build(load_dataset({"name": "captions", "path": str(tmp_path / "caps")}).extras["captions"])
    save_text_encoder(
        tmp_path / "encoder.safetensors",
        WordGRUEncoder(WordGRUOptions(embed_dim=12, word_dim=8, hidden=8), vocabulary),
        ImageEncoder(3, 32, 12, width=8),
    )
    train_section = {
        "steps": 2,
        "batch_size": 8,
        "log_every": 1,
        "sample_every": 2,
        "checkpoint_every": 2,
        "sample_grid": 16,
        "tensorboard": False,
        "device": "cpu",
    }
    small = {"g_width": 8, "d_width": 8, "text_compressed": 8}
    stages = {
        "s1": {
            "data": {"name": "captions", "path": str(tmp_path / "caps"), "resolution": 16},
            "model": {"name": "text-dcgan", "latent_dim": 10, "conditioning_augmentation": True, **small},
            "objective": {"name": "stackgan", "text_encoder": str(tmp_path / "encoder.safetensors")},
            "train": {**train_section, "ema_decay": 0.9},
        },
        "s2": {
            "data": {"name": "captions", "path": str(tmp_path / "caps"), "resolution": 32},
            "model": {"name": "stackgan-stage2", "condition_dim": 6, "residual_blocks": 1, **small},
            "objective": {"name": "stackgan", "stage1": str(tmp_path / "s1")},
            "train": train_section,
        },
    }
    for name, config in stages.items():
        (tmp_path / f"{name}.json").write_text(json.dumps(config))
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "gankit",
            "train",
            str(tmp_path / f"{name}.json"),
            "--out",
            str(tmp_path / name),
            "--quiet",
        ]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=ENV)
        assert done.returncode == 0, done.stderr[-3000:]
    stage1, stage2 = load_generator(tmp_path / "s1"), load_generator(tmp_path / "s2")
    for name, value in stage1.G.state_dict().items():
        assert torch.equal(stage2.G.stage1.state_dict()[name], value), name
    assert stage2.sample(2, text="a big blue bag at the bottom").shape == (2, 32, 32, 3)
