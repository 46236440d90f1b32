"""The voxbatch server: a gRPC text-to-speech service built around a dynamic batcher."""

__version__ = "0.1.0"
