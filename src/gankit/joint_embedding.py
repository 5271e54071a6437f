"""Reed et al. (2016)'s deep symmetric structured joint embedding: training a text encoder phi(t) and an
image encoder psi(v) together, and its retrieval score.

The compatibility F(v, t) = psi(v) . phi(t) is trained to be higher for an image and its own caption than
for any caption of another class, and the other way round (``losses.symmetric_structured_loss``). The text
encoder then conditions G and D of a text-to-image GAN; the image encoder scores generated images
(retrieval R@1) and, with ``objective.matching_weight``, G's images during training.
"""

from __future__ import annotations

from itertools import islice

import torch

from gankit.data.captions import attribute_groups
from gankit.losses import symmetric_structured_loss
from gankit.networks.text_encoders import TEXT_ENCODERS, ImageEncoder, Vocabulary, caption_embeddings


def train_joint_embedding(
    data,
    encoder_name: str = "word-gru",
    options: dict | None = None,
    steps: int = 2000,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    log=print,
    text_encoder=None,
):
    """Train a text encoder and an image encoder with ``symmetric_structured_loss`` on a captioned
    ``Dataset`` (``extras["captions"]``). Each step takes ``batch_size`` images and one random caption
    of each. With ``text_encoder`` (a loaded encoder: a train-encoder file, or MiniLM) that encoder is kept
    as it is and only the image encoder learns, against its cached caption embeddings. Returns the text
    encoder (eval mode) and the image encoder."""
    captions = data.extras.get("captions")
    if not captions:
        raise ValueError(f"dataset {data.name!r} has no captions (use dataset 'captions')")
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    if text_encoder is None:
        entry, opts = TEXT_ENCODERS.resolve({"name": encoder_name, **(options or {})}, "text encoder")
        encoder = entry.factory(opts, Vocabulary.build(captions))
        if not any(p.requires_grad for p in encoder.parameters()):
            raise ValueError(
                f"text encoder {encoder_name!r} is pretrained and frozen: train only an image "
                f"encoder beside it with --text-encoder {encoder_name}"
            )
        fixed = None
    else:
        encoder, fixed = text_encoder.eval(), caption_embeddings(text_encoder, captions)
    image_encoder = ImageEncoder(data.x.shape[1], data.x.shape[-1], encoder.embed_dim)
    groups = attribute_groups(data.extras.get("attributes"))
    trained = [*image_encoder.parameters(), *(encoder.parameters() if fixed is None else ())]
    optimizer = torch.optim.Adam(trained, lr=lr)
    image_encoder.train()
    if fixed is None:
        encoder.train()
    for step in range(1, steps + 1):
        index = torch.randint(len(data.x), (batch_size,), generator=generator)
        picks = torch.randint(1 << 30, (batch_size,), generator=generator)
        if fixed is None:
            text = encoder([captions[i][p % len(captions[i])] for i, p in zip(index.tolist(), picks.tolist())])
        else:
            text = fixed[index, picks % fixed.shape[1]]
        labels = None if groups is None else groups[index]
        loss = symmetric_structured_loss(image_encoder(data.model_input(index)), text, labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % max(1, steps // 10) == 0 or step == steps:
            log(f"joint embedding step {step}/{steps}: loss {loss.item():.4f}")
    return encoder.eval(), image_encoder.eval()


@torch.no_grad()
def retrieval_rank1(
    encoder, image_encoder, data, pool: int = 100, trials: int = 500, seed: int = 0, progress: bool = False
) -> float:
    """How often an image's own caption scores highest among ``pool`` captions (its own and pool - 1 of
    other images whose attributes differ, when known): the retrieval score of the joint embedding. Every
    caption and image involved is embedded once, in batches (``progress``: with a bar)."""
    from tqdm.auto import tqdm

    rng = torch.Generator().manual_seed(seed)
    captions, groups = data.extras["captions"], attribute_groups(data.extras.get("attributes"))
    chosen = []
    for _ in range(trials):
        i = int(torch.randint(len(data.x), (1,), generator=rng))
        order = torch.randperm(len(data.x), generator=rng).tolist()
        chosen.append(
            (i, list(islice((j for j in order if j != i and (groups is None or groups[j] != groups[i])), pool - 1)))
        )
    needed = sorted({i for i, _ in chosen} | {j for _, others in chosen for j in others})
    starts = range(0, len(needed), 500)
    bar = tqdm(
        starts,
        desc=f"retrieval: embedding {len(needed):,} captions and images",
        unit="batch",
        leave=False,
        disable=not progress,
    )
    texts, images = {}, {}
    for b in bar:
        part = needed[b : b + 500]
        texts.update(zip(part, encoder([captions[j][0] for j in part])))
    queries = sorted({i for i, _ in chosen})
    for b in range(0, len(queries), 500):
        part = queries[b : b + 500]
        images.update(zip(part, image_encoder(data.model_input(torch.tensor(part)))))
    hits = 0
    for i, others in chosen:
        scores = torch.stack([texts[j] for j in [i, *others]]) @ images[i]
        hits += int(scores.argmax() == 0)
    return hits / trials
