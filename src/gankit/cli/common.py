"""What several command groups share."""

NO_EMA_HELP = "a checkpoint that holds an EMA of G: use the raw G instead (exports hold one of the two)"
CONDITION_NOISE_HELP = ("StackGAN: scale of the conditioning-augmentation noise when drawing (c = mu + sigma * "
                        "scale * eps); 1 is the paper's sampling, 0 uses the mean mu: truer to the caption, less varied")


def feature_fn(extractor):
    """Features of uint8 images under an extractor (None: no extractor)."""
    return None if extractor is None else (lambda x: extractor(x).features)
