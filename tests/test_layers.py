"""The package's layers import one way (docs/design.md, "Layers"), with no cycles.

Every ``import gankit.X`` / ``from gankit.X import`` in every module, at the top or inside a function, is
parsed; a module may import its own layer or any layer below it, never one above.
"""

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "src" / "gankit"

# Lowest first. A module is placed by the longest prefix of its dotted name listed here.
LAYERS = [
    (
        "core",
        [
            "gankit",
            "gankit.errors",
            "gankit.ownership",
            "gankit.progress",
            "gankit.registry",
            "gankit.files",
            "gankit.seeding",
            "gankit.device",
            "gankit.formats",
            "gankit.images",
        ],
    ),
    ("data", ["gankit.data"]),
    ("networks", ["gankit.networks", "gankit.augment"]),
    ("losses", ["gankit.losses"]),
    ("variants", ["gankit.variants"]),
    ("config", ["gankit.config"]),
    ("inference", ["gankit.inference", "gankit.portable"]),
    ("metrics", ["gankit.metrics", "gankit.monitor"]),
    ("training", ["gankit.training", "gankit.joint_embedding"]),
    ("analysis", ["gankit.analysis"]),
    ("web", ["gankit.web"]),
    ("sweeps", ["gankit.sweep"]),  # trains runs and writes their comparison page
    ("cli", ["gankit.cli", "gankit.__main__"]),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(name: str) -> int:
    best, index = "", None
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > len(best):
                best, index = prefix, i
    assert index is not None, f"{name} is in no layer: add it to LAYERS and docs/design.md"
    return index


def imports_of(path: Path) -> set[str]:
    """The gankit modules ``path`` imports (``from gankit.a import b`` counts gankit.a, and gankit.a.b when
    that is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "gankit"}
        elif (
            isinstance(node, ast.ImportFrom)
            and node.module
            and node.module.split(".")[0] == "gankit"
            and not node.level
        ):
            found.add(node.module)
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                folder = PACKAGE.parent / Path(*candidate.split("."))
                if folder.with_suffix(".py").is_file() or (folder / "__init__.py").is_file():
                    found.add(candidate)
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: {i for i in imports_of(path) if i in modules and i != name} for name, path in modules.items()}


def test_every_module_has_a_layer_and_imports_only_its_own_or_lower_layers():
    wrong = []
    for name, targets in graph().items():
        for target in targets:
            if target == "gankit":  # the package root: only __version__ and lazy re-exports
                continue
            if layer_of(target) > layer_of(name):
                wrong.append(f"{name} ({LAYERS[layer_of(name)][0]}) imports {target} ({LAYERS[layer_of(target)][0]})")
    assert not wrong, "\n".join(sorted(wrong))


def test_there_are_no_import_cycles():
    edges = graph()  # a package's __init__ importing its submodules counts: they import the package's parts
    state, stack, cycles = {}, [], []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for target in edges[node]:
            if state.get(target) == "open":
                cycles.append(stack[stack.index(target) :] + [target])
            elif target not in state:
                visit(target)
        stack.pop()
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


@pytest.mark.parametrize(
    "module, absent",
    [
        ("gankit.registry", ["gankit.training", "torch.optim", "gankit.config"]),
        ("gankit", ["gankit.training", "gankit.inference", "torch"]),
        ("gankit.inference", ["gankit.training", "gankit.metrics", "gankit.analysis"]),
    ],
)
def test_importing_a_low_module_loads_nothing_above_it(module, absent):
    code = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
    loaded = set(
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    )
    assert not [m for m in loaded if any(m == a or m.startswith(a + ".") for a in absent)]


def test_the_training_modules_name_no_variant():
    words = r"infogan|acgan|gan-cls|gan_cls|stackgan|text|texts|text_encoder|label|labels|code|codes|caption|captions"
    found = []
    for path in sorted((PACKAGE / "training").glob("*.py")):
        source = path.read_text().lower()
        found += [f"{path.name}: {m}" for m in re.findall(rf"(?<![a-z_])({words})(?![a-z_])", source)]
        found += [f"{path.name}: {m}" for m in re.findall(r"\b(hasattr|getattr)\(", source)]
    assert not found


def condition_accesses(paths) -> set[str]:
    """The attributes read from a condition (``condition.X``, ``pipeline.condition.X``) in ``paths``."""
    found = set()
    for path in paths:
        found |= set(re.findall(r"\bcondition\.([a-z_]+)", path.read_text()))
    return found


def test_the_condition_protocol_is_grouped_and_each_caller_uses_its_groups():
    """Every method of the Condition protocol belongs to a group (record, training, sampling, front end); the
    training modules read only the record and training groups, and the sampling and front-end modules read no
    kind's own fields (a class count, InfoGAN's layout, a text encoder, an image shape): only the protocol."""
    from gankit.variants.base import CONDITION_GROUPS, Condition

    grouped = {name for names in CONDITION_GROUPS.values() for name in names}
    methods = {
        n for n, v in vars(Condition).items() if not n.startswith("_") and callable(v) or isinstance(v, classmethod)
    }
    assert methods - grouped == set()
    training = condition_accesses((PACKAGE / "training").glob("*.py"))
    assert training - set(CONDITION_GROUPS["record"] + CONDITION_GROUPS["training"]) == set()
    front = [PACKAGE / "inference.py", PACKAGE / "portable.py"]
    for folder in ("metrics", "web", "cli", "analysis"):
        front += sorted((PACKAGE / folder).glob("*.py"))
    assert condition_accesses(front) - grouped == set()
