"""What the reliability checks cost (issue 17): the checksum on writing and reading, the tensor checks on
loading a checkpoint, the non-finite weight check on a save step and the pre-flight save check, for the
DCGAN of the paper at 64x64 (the largest preset G and D: 12.7 M and 11.0 M parameters, a 271 MiB checkpoint).

    python benchmarks/file_checks.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from gankit.config import load_config
from gankit.files import check_state, file_checksum, read_tensors, serialize_tensors
from gankit.formats import FORMAT_CHECKPOINT, checkpoint_payload
from gankit.networks import MODELS
from gankit.training.checkpoints import TrainingState, checkpoint_parts, load_checkpoint, save_checkpoint
from gankit.variants.base import Condition


def best_of(repeats: int, work) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.manual_seed(0)
    config = load_config("dcgan-paper-64", ["data.name=digits", "data.resolution=64", "data.channels=3"])
    entry, options = MODELS.resolve({**config.model, "resolution": 64, "channels": 3}, "model")
    G, D = entry.factory.generator(options), entry.factory.discriminator(options)
    opt_G, opt_D = (torch.optim.Adam(n.parameters(), fused=True) for n in (G, D))
    for net, opt in ((G, opt_G), (D, opt_D)):  # one step, so the optimizers hold their moments
        out = net(torch.randn(2, options.latent_dim)) if net is G else net(torch.randn(2, 3, 64, 64))
        out.float().mean().backward()
        opt.step()
    state = TrainingState(G, D, None, opt_G, opt_D, torch.Generator().manual_seed(1), torch.device("cpu"), Condition())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = save_checkpoint(folder, 1, checkpoint_parts(config, 1, 1, state))
        size = path.stat().st_size
        tensors, metadata = read_tensors(path, FORMAT_CHECKPOINT)
        rows = {
            "write a checkpoint (serialize + checksum + fsync)": best_of(
                args.repeats, lambda: save_checkpoint(folder, 1, checkpoint_parts(config, 1, 1, state))
            ),
            "  of which the checksum": best_of(args.repeats, lambda: file_checksum(tensors, metadata)),
            "read a checkpoint (checksum verified)": best_of(
                args.repeats, lambda: read_tensors(path, FORMAT_CHECKPOINT)
            ),
            "check every tensor against the nets and optimizers, then load": best_of(
                args.repeats, lambda: load_checkpoint(path, state, lambda s: None, (tensors, metadata))
            ),
            "  of which check_state on G and D": best_of(
                args.repeats,
                lambda: [
                    check_state(
                        path, "w", {k[2:]: v for k, v in tensors.items() if k.startswith(p + ".")}, n.state_dict()
                    )
                    for p, n in (("G", G), ("D", D))
                ],
            ),
            "non-finite weight check (every save step)": best_of(args.repeats, state.non_finite),
            "pre-flight: serialize one checkpoint in memory": best_of(
                args.repeats,
                lambda: serialize_tensors(*checkpoint_payload(**checkpoint_parts(config, 1, 1, state)), path),
            ),
        }
    print(
        f"checkpoint of {sum(p.numel() for p in G.parameters()) / 1e6:.2f} "
        f"M + {sum(p.numel() for p in D.parameters()) / 1e6:.2f} M "
        f"parameters, {size / 2**20:.1f} MiB; best of {args.repeats}, one thread"
    )
    for name, seconds in rows.items():
        print(f"  {name:66s} {seconds * 1000:8.1f} ms")


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
