"""Text for text-to-image models: a word vocabulary, text encoders, and the joint embedding objective.

Reed et al. (2016) condition G and D on a caption embedding phi(t) learned beforehand with a
*joint embedding* of images and text: an image encoder psi(v) and a text encoder phi(t) are trained
so that the compatibility F(v, t) = psi(v) . phi(t) is higher for an image and its own caption than
for any caption of another class, and the other way round (their "deep symmetric structured joint
embedding"). ``symmetric_structured_loss`` is that objective over a minibatch; ``TEXT_ENCODERS``
holds the encoders a run can name.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter

import torch
from torch import nn

from gankit.registry import Registry

PAD, UNK = 0, 1
_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


def words(text: str) -> list[str]:
    """Lowercase words of ``text``; hyphenated words stay whole ("t-shirt", "mid-sized")."""
    return _WORD.findall(text.lower())


@dataclasses.dataclass(frozen=True)
class Vocabulary:
    """Word ids: 0 pads, 1 stands for a word not in ``tokens`` (ids 2 and up, in that order)."""

    tokens: tuple[str, ...]

    @classmethod
    def build(cls, captions, min_count: int = 1) -> "Vocabulary":
        """From an iterable of captions (or of lists of captions); words seen fewer than ``min_count``
        times become unknown. Most frequent first, ties alphabetical, so the ids are reproducible."""
        counts: Counter[str] = Counter()
        for item in captions:
            for text in [item] if isinstance(item, str) else item:
                counts.update(words(text))
        kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return cls(tuple(kept))

    def __len__(self) -> int:
        return len(self.tokens) + 2

    def encode(self, texts: list[str], max_length: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
        """(ids (N, L) padded with 0, lengths (N,)); captions longer than ``max_length`` words are cut.
        An empty caption becomes one unknown word."""
        index = {w: i + 2 for i, w in enumerate(self.tokens)}
        rows = [[index.get(w, UNK) for w in words(t)][:max_length] or [UNK] for t in texts]
        ids = torch.full((len(rows), max(len(r) for r in rows)), PAD, dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
        return ids, torch.tensor([len(r) for r in rows])


TEXT_ENCODERS = Registry("text encoder")


@dataclasses.dataclass
class WordGRUOptions:
    embed_dim: int = 128  # size of the caption embedding phi(t)
    word_dim: int = 64
    hidden: int = 256
    max_length: int = 32  # words per caption; longer ones are cut


@TEXT_ENCODERS.register("word-gru", WordGRUOptions, "word embeddings + bidirectional GRU, trained with the joint embedding")
class WordGRUEncoder(nn.Module):
    """Captions -> (N, embed_dim): a bidirectional GRU over word embeddings; the two final states, joined
    and projected. Captions of any length in one batch (packed sequences)."""

    def __init__(self, options: WordGRUOptions, vocabulary: Vocabulary):
        super().__init__()
        self.options, self.vocabulary = options, vocabulary
        self.embedding = nn.Embedding(len(vocabulary), options.word_dim, padding_idx=PAD)
        self.gru = nn.GRU(options.word_dim, options.hidden, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * options.hidden, options.embed_dim)

    @property
    def embed_dim(self) -> int:
        return self.options.embed_dim

    def forward(self, texts: list[str]) -> torch.Tensor:
        ids, lengths = self.vocabulary.encode(texts, self.options.max_length)
        ids = ids.to(self.embedding.weight.device)
        packed = nn.utils.rnn.pack_padded_sequence(self.embedding(ids), lengths, batch_first=True, enforce_sorted=False)
        _, h = self.gru(packed)  # (2, N, hidden): the last state of each direction
        return self.out(torch.cat([h[0], h[1]], dim=1))


def symmetric_structured_loss(image: torch.Tensor, text: torch.Tensor, labels: torch.Tensor | None = None,
                              margin: float = 1.0) -> torch.Tensor:  # fmt: skip
    """Reed et al. 2016's symmetric structured joint-embedding loss over a minibatch, in its hinge form.

    ``image`` (N, D) and ``text`` (N, D) are the embeddings of N matching (image, caption) pairs;
    compatibility S = image @ text.T. For each image, every caption of another class that scores within
    ``margin`` of its own caption costs the difference, and for each caption every image of another
    class likewise (the two directions: the "symmetric" part). Without ``labels`` every other pair counts
    as another class. Mean over the N rows of each direction, summed."""
    scores = image @ text.T
    own = scores.diagonal()
    labels = torch.arange(len(scores), device=scores.device) if labels is None else labels
    other = (labels[:, None] != labels[None, :]).to(scores.dtype)
    image_side = (torch.relu(margin + scores - own[:, None]) * other).sum(dim=1)  # captions for each image
    text_side = (torch.relu(margin + scores - own[None, :]) * other).sum(dim=0)  # images for each caption
    return image_side.mean() + text_side.mean()
