"""Sketch2Anime: rough face sketches + colour hints -> clean anime faces."""

from s2a.pipeline import GenerationResult, Sketch2Anime

__all__ = ["GenerationResult", "Sketch2Anime"]
__version__ = "0.1.0"
