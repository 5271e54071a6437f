"""Text side of text-to-image: vocabulary, the word-GRU encoder, Reed et al.'s joint embedding loss."""

import pytest
import torch

from gankit.losses import symmetric_structured_loss
from gankit.networks.text_encoders import PAD, TEXT_ENCODERS, UNK, Vocabulary, WordGRUEncoder, WordGRUOptions, words


def test_words_and_vocabulary_ids():
    assert words("Top left: a tiny T-shirt, red!") == ["top", "left", "a", "tiny", "t-shirt", "red"]
    vocab = Vocabulary.build([["a red sandal", "a blue sandal"], "a red bag"], min_count=2)
    assert vocab.tokens == ("a", "red", "sandal")  # most frequent first, ties alphabetical; blue, bag dropped
    ids, lengths = vocab.encode(["a blue sandal", "", "red red red red"], max_length=3)
    assert ids.tolist() == [[2, UNK, 4], [UNK, PAD, PAD], [3, 3, 3]] and lengths.tolist() == [3, 1, 3]


def test_word_gru_embeds_any_batch_and_ignores_padding():
    torch.manual_seed(0)
    vocab = Vocabulary.build(["a small red sandal in the top left corner", "a big blue bag"])
    encoder = WordGRUEncoder(WordGRUOptions(embed_dim=16, word_dim=8, hidden=12), vocab).eval()
    out = encoder(["a big blue bag", "a small red sandal in the top left corner"])
    assert out.shape == (2, 16)
    alone = encoder(["a big blue bag"])  # padded in the batch, unpadded alone: same embedding
    torch.testing.assert_close(out[0], alone[0], atol=1e-6, rtol=1e-6)
    assert "word-gru" in TEXT_ENCODERS.names()


def test_symmetric_structured_loss_on_hand_made_scores():
    image = torch.eye(3)
    text = torch.eye(3) * 2.0  # own pair scores 2, every other 0: margin 1 met both ways
    assert symmetric_structured_loss(image, text).item() == 0.0
    text = torch.tensor([[2.0, 0, 0], [0, 2.0, 0], [1.5, 0, 0]])  # caption 2 scores 1.5 with image 0 and 0 with its own
    # image 0: caption 2 costs 1 + 1.5 - 2 = 0.5; image 2: captions 0, 1 cost 1 + 0 - 0 = 1 each;
    # caption 0: image 2 costs 1 + 0 - 2 < 0 -> 0; caption 2: image 0 costs 1 + 1.5 - 0 = 2.5, image 1 costs 1.
    expected = (0.5 + 0 + 2) / 3 + (0 + 0 + 3.5) / 3
    assert symmetric_structured_loss(image, text).item() == pytest.approx(expected)
    same_class = torch.tensor([0, 1, 0])  # images 0 and 2 share a class: their cross terms do not count
    expected = (0 + 0 + 1) / 3 + (0 + 0 + 1) / 3
    assert symmetric_structured_loss(image, text, same_class).item() == pytest.approx(expected)


def test_the_joint_embedding_learns_to_match_captions_to_attributes():
    """A toy: 'images' are one-hot colour codes; after training, each caption ranks its colour first."""
    torch.manual_seed(0)
    colours = ["red", "green", "blue", "yellow"]
    captions = [f"a {size} {c} thing" for c in colours for size in ("small", "big")]
    labels = torch.tensor([i for i in range(4) for _ in range(2)])
    encoder = WordGRUEncoder(WordGRUOptions(embed_dim=8, word_dim=8, hidden=16), Vocabulary.build(captions))
    image_net = torch.nn.Linear(4, 8)
    optimizer = torch.optim.Adam([*encoder.parameters(), *image_net.parameters()], lr=0.01)
    images = torch.nn.functional.one_hot(labels, 4).float()
    for _ in range(150):
        loss = symmetric_structured_loss(image_net(images), encoder(captions), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        scores = encoder(captions) @ image_net(torch.eye(4)).T
    assert torch.equal(scores.argmax(dim=1), labels) and loss.item() < 0.1


@torch.no_grad()
def one_trial_at_a_time(encoder, image_encoder, data, pool, trials, seed=0):
    """The retrieval score by its definition: per trial, embed the image and its pool of captions."""
    from gankit.data.captions import attribute_groups

    rng = torch.Generator().manual_seed(seed)
    captions, groups = data.extras["captions"], attribute_groups(data.extras.get("attributes"))
    hits = 0
    for _ in range(trials):
        i = int(torch.randint(len(data.x), (1,), generator=rng))
        others = [j for j in torch.randperm(len(data.x), generator=rng).tolist() if j != i and groups[j] != groups[i]][
            : pool - 1
        ]
        scores = (
            encoder([captions[i][0]] + [captions[j][0] for j in others])
            @ image_encoder(data.model_input(torch.tensor([i])))[0]
        )
        hits += int(scores.argmax() == 0)
    return hits / trials


@pytest.mark.slow
def test_joint_embedding_trains_on_scenes_saves_and_loads(tmp_path, monkeypatch):
    import numpy as np

    from gankit.data import Dataset
    from gankit.data import captions as cap
    from gankit.joint_embedding import retrieval_rank1, train_joint_embedding
    from gankit.networks.text_encoders import load_text_encoder, save_text_encoder

    items = np.zeros((10, 28, 28), np.uint8)
    items[:, 6:22, 6:22] = 255  # a plain square per class: colour, size and position carry the signal
    split = cap.make_split(items, np.arange(10), 400, "train", seed=0, resolution=16, captions_per_image=3)
    data = Dataset(
        torch.from_numpy(split["images"]).permute(0, 3, 1, 2).contiguous(),
        torch.from_numpy(split["class"]),
        "toy",
        extras={
            "captions": split["captions"],
            "attributes": {k: split[k] for k in ("class", "colour", "size", "position")},
        },
    )
    options = {"embed_dim": 32, "word_dim": 16, "hidden": 32}
    encoder, image_encoder = train_joint_embedding(data, options=options, steps=150, batch_size=32, log=lambda s: None)
    chance = 1 / 20
    score = retrieval_rank1(encoder, image_encoder, data, pool=20, trials=100)
    assert score > 3 * chance
    assert score == one_trial_at_a_time(encoder, image_encoder, data, pool=20, trials=100)
    save_text_encoder(tmp_path / "text.safetensors", encoder)
    loaded = load_text_encoder(tmp_path / "text.safetensors")
    texts = ["a small red tee in the top left corner", "bottom: a big bag, blue"]
    torch.testing.assert_close(loaded(texts), encoder(texts))

    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path))  # an image encoder alone, beside the kept text encoder
    before = {k: v.clone() for k, v in loaded.state_dict().items()}
    kept, psi = train_joint_embedding(data, steps=150, batch_size=32, log=lambda s: None, text_encoder=loaded)
    assert kept is loaded and all(torch.equal(v, before[k]) for k, v in kept.state_dict().items())
    assert retrieval_rank1(kept, psi, data, pool=20, trials=100) > 3 * chance


def test_cli_trains_an_encoder_on_a_captioned_folder(tmp_path, capsys):
    from PIL import Image

    from gankit.cli import main
    from gankit.networks.text_encoders import load_image_encoder, load_text_encoder

    for k, colour in enumerate(["red", "green", "blue", "white"]):
        Image.new("RGB", (20, 20), colour).save(tmp_path / f"{k}.png")
        (tmp_path / f"{k}.txt").write_text(f"a {colour} square\nall {colour}\n")
    out = tmp_path / "enc.safetensors"
    args = [
        "text",
        "train-encoder",
        "--data",
        str(tmp_path),
        "--resolution",
        "16",
        "--steps",
        "3",
        "--batch-size",
        "4",
        "--set",
        "embed_dim=8",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    assert "retrieval on the train split" in capsys.readouterr().out
    assert load_text_encoder(out)(["a red square"]).shape == (1, 8)
    kept = tmp_path / "kept.safetensors"  # the same text encoder, a new image encoder beside it
    args = [
        "text",
        "train-encoder",
        "--data",
        str(tmp_path),
        "--resolution",
        "16",
        "--steps",
        "3",
        "--batch-size",
        "4",
        "--text-encoder",
        str(out),
        "--seed",
        "1",
        "--out",
        str(kept),
    ]
    assert main(args) == 0
    torch.testing.assert_close(load_text_encoder(kept)(["a red square"]), load_text_encoder(out)(["a red square"]))
    x = torch.rand(2, 3, 16, 16)
    assert not torch.allclose(load_image_encoder(kept)(x), load_image_encoder(out)(x))


def test_caption_embeddings_are_computed_once_and_cached(tmp_path, monkeypatch):
    from gankit.networks.text_encoders import caption_embeddings

    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path))
    captions = [["a red bag", "red bag", "a bag"], ["a blue boot", "blue boot"]]
    encoder = WordGRUEncoder(WordGRUOptions(embed_dim=6, word_dim=4, hidden=5), Vocabulary.build(captions))
    first = caption_embeddings(encoder, captions)
    assert first.shape == (2, 2, 6)  # two captions each: the fewest any image has
    torch.testing.assert_close(first[1, 0], encoder.eval()(["a blue boot"])[0])
    assert len(list((tmp_path / "text").glob("*.safetensors"))) == 1
    calls = []
    monkeypatch.setattr(encoder, "forward", lambda texts: calls.append(texts))
    torch.testing.assert_close(caption_embeddings(encoder, captions), first)  # from the cache: no encoder call
    assert calls == []
    with torch.no_grad():
        encoder.out.bias.add_(1.0)  # new weights: a new cache entry
    monkeypatch.undo()
    monkeypatch.setenv("GANKIT_CACHE", str(tmp_path))
    assert not torch.allclose(caption_embeddings(encoder, captions), first)
    assert len(list((tmp_path / "text").glob("*.safetensors"))) == 2


def test_text_encoder_saves_with_its_image_encoder(tmp_path):
    from gankit.files import CheckpointError
    from gankit.networks.text_encoders import ImageEncoder, load_image_encoder, load_text_encoder, save_text_encoder

    torch.manual_seed(0)
    encoder = WordGRUEncoder(WordGRUOptions(embed_dim=6, word_dim=4, hidden=5), Vocabulary.build(["a red bag"])).eval()
    image = ImageEncoder(3, 16, 6, width=4).eval()
    save_text_encoder(tmp_path / "both.safetensors", encoder, image)
    save_text_encoder(tmp_path / "text.safetensors", encoder)
    torch.testing.assert_close(load_text_encoder(tmp_path / "both.safetensors")(["a red bag"]), encoder(["a red bag"]))
    x = torch.rand(2, 3, 16, 16)
    torch.testing.assert_close(load_image_encoder(tmp_path / "both.safetensors")(x), image(x))
    with pytest.raises(CheckpointError, match="no image encoder"):
        load_image_encoder(tmp_path / "text.safetensors")
