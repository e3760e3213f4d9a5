"""One interface for the model kinds (train/kinds.py), and no import cycle between the package's modules."""

import ast
import inspect
import json
from pathlib import Path

import pytest

from train.kinds import KINDS, kind_module
from train.predict import load_predictor

PACKAGE = Path(__file__).resolve().parent.parent / "train"


def import_graph() -> dict[str, set[str]]:
    """module → the package modules it imports, at the top or inside a function (train/kinds.py's importlib
    lookup is the one way to reach a kind without importing it)."""
    modules = {path.stem for path in PACKAGE.glob("*.py")}
    graph = {}
    for path in PACKAGE.glob("*.py"):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                deps.update([node.module.split(".")[0]] if node.module else [alias.name for alias in node.names])
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("train."):
                deps.add(node.module.split(".")[1])
        graph[path.stem] = deps & modules
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for dep in sorted(graph[node]):
            if state.get(dep) == "open":
                return path[path.index(dep):] + [dep]
            if dep not in state and (cycle := visit(dep, path + [dep])):
                return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return None


def test_the_package_imports_form_no_cycle():
    graph = import_graph()
    assert {"fit", "predict", "evaluation", "transformer", "tfidf", "ensemble"} <= graph.keys()
    assert find_cycle(graph) is None, " → ".join(find_cycle(graph))
    for kind in ("transformer", "tfidf", "ensemble"):  # the generic modules reach a kind only through the registry
        assert kind not in graph["fit"] | graph["predict"] | graph["evaluation"]


def test_find_cycle_reports_one():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_kind_has_the_same_interface(name):
    module = kind_module(name)
    assert isinstance(module.MULTI_PROCESS, bool)
    fit = inspect.signature(module.fit).parameters
    assert list(fit)[:2] == ["cfg", "run_dir"]
    assert {"command", "checkpoint", "device", "precision"} <= {p for p in fit if fit[p].kind is fit[p].KEYWORD_ONLY}
    load = inspect.signature(module.load).parameters
    assert list(load)[:2] == ["run_dir", "info"]
    assert {"batch_size", "device", "precision", "backend"} <= {p for p in load if load[p].kind is load[p].KEYWORD_ONLY}


def test_an_unknown_model_type_names_the_run_file(tmp_path):
    (tmp_path / "run.json").write_text(json.dumps({"status": "complete", "model_type": "svm"}), encoding="utf-8")
    with pytest.raises(ValueError, match=r"run\.json: unknown model type 'svm'"):
        load_predictor(tmp_path)
    with pytest.raises(FileNotFoundError, match="no run.json"):
        load_predictor(tmp_path / "elsewhere")


@pytest.mark.parametrize("kind", ["tfidf", "ensemble"])
def test_kinds_without_onnx_refuse_another_backend(tmp_path, kind):
    (tmp_path / "run.json").write_text(json.dumps({"status": "complete", "model_type": kind}), encoding="utf-8")
    with pytest.raises(ValueError, match="no ONNX export"):
        load_predictor(tmp_path, backend="onnx")
