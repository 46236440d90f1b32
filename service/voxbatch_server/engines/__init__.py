"""Engines turn sentences into audio. They know nothing about gRPC or the queue."""

from .base import Engine

__all__ = ["Engine"]
