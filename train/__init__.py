"""ViStance: train, evaluate and apply models that read Vietnamese news and say where each country stands
on the Russia–Ukraine war."""

__version__ = "0.1.0"
