"""An evaluation-centric harness for choosing and guarding a base model."""

__version__ = "0.1.0"
