"""The layers of service/ (docs/architecture.md): each imports only the layers below it and the
modules beside them all, and only the HTTP surfaces speak Flask."""

import ast
import pathlib

import pytest

SERVICE = pathlib.Path(__file__).resolve().parents[2] / "service"
# Top to bottom: a layer may import the ones after it, never one before it.
LAYERS = ["serving", "api", "pipeline", "keys", "usage", "hub", "store"]
# Beside every layer: plain values and configuration any of them may read.
BESIDE = {"settings", "errors", "catalog", "telemetry", "serving.configuration"}
SPEAKS_FLASK = {"app", "api", "demo"}


def modules():
    for path in sorted(SERVICE.rglob("*.py")):
        name = ".".join(path.relative_to(SERVICE).with_suffix("").parts).removesuffix(".__init__")
        yield name, ast.parse(path.read_text(encoding="utf-8"))


def imported(tree) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def layer_of(module: str) -> str | None:
    """The layer a module of service/ belongs to, None for one beside the layers or above them."""
    if any(module == beside or module.startswith(beside + ".") for beside in BESIDE):
        return None
    top = module.split(".")[0]
    return top if top in LAYERS else None


def upward_imports(named_trees) -> list[str]:
    found = []
    for name, tree in named_trees:
        layer = layer_of(name)
        if layer is None:
            continue
        for target in imported(tree):
            if not target.startswith("service."):
                continue
            target_layer = layer_of(target.removeprefix("service."))
            if target_layer is not None and LAYERS.index(target_layer) < LAYERS.index(layer):
                found.append(f"{name} -> {target}")
    return found


def test_no_layer_imports_one_above_it():
    assert upward_imports(modules()) == []


def test_only_the_surfaces_speak_flask():
    speaking = [
        name
        for name, tree in modules()
        if name.split(".")[0] not in SPEAKS_FLASK
        and any(target.split(".")[0] in ("flask", "werkzeug") for target in imported(tree))
    ]
    assert speaking == []


@pytest.mark.parametrize("probe", ["pipeline.probe", "hub.probe", "store.probe"])
def test_the_check_sees_an_upward_import(probe):
    """The check itself: a module of a low layer that imports a surface is reported."""
    tree = ast.parse("from service.api.gateway import gateway\nfrom service.catalog import Catalog\n")
    assert upward_imports([(probe, tree)]) == [f"{probe} -> service.api.gateway"]


def test_no_two_modules_share_a_name():
    names = [path.name for path in SERVICE.rglob("*.py") if path.name not in ("__init__.py", "__main__.py")]
    assert sorted({name for name in names if names.count(name) > 1}) == []


def test_at_most_six_modules_at_the_top():
    assert len(list(SERVICE.glob("*.py"))) <= 6
