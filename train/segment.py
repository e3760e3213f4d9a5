"""Vietnamese word segmentation backends behind one interface: pyvi | underthesea | none."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from typing import Callable


@dataclass(frozen=True)
class Segmenter:
    """Turns raw text into the space-separated, underscore-joined words PhoBERT-style models read."""

    name: str
    version: str
    _fn: Callable[[str], str]

    def __call__(self, text: str) -> str:
        return self._fn(text) if text else text


def _pyvi() -> Callable[[str], str]:
    from pyvi import ViTokenizer

    return ViTokenizer.tokenize


def _underthesea() -> Callable[[str], str]:
    from underthesea import word_tokenize

    return lambda text: word_tokenize(text, format="text")


_BACKENDS: dict[str, Callable[[], Callable[[str], str]]] = {
    "pyvi": _pyvi,
    "underthesea": _underthesea,
    "none": lambda: (lambda text: text),
}


@lru_cache(maxsize=None)
def get_segmenter(name: str) -> Segmenter:
    """Load a backend once per process (pyvi and underthesea load their models on first use)."""
    if name not in _BACKENDS:
        raise ValueError(f"unknown segmenter {name!r}; expected one of {', '.join(_BACKENDS)}")
    package_version = ""
    if name != "none":
        try:
            package_version = version(name)
        except PackageNotFoundError:
            raise ValueError(f"segmenter {name!r} is not installed: pip install {name}") from None
    return Segmenter(name, package_version, _BACKENDS[name]())
