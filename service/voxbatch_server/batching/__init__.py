"""The dynamic batcher: queues work, waits for company, budgets memory and dispatches batches.

It knows nothing about models: engines are reached through the BatchRunner protocol.
"""

from .batcher import Batcher, BatchRunner, BatchSession
from .policy import BatchLimits

__all__ = ["Batcher", "BatchLimits", "BatchRunner", "BatchSession"]
