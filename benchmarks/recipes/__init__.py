"""Plain PyTorch scripts of the papers' recipes (no gankit imports): the baselines of benchmarks/vs_recipe.py."""
