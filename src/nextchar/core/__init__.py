"""Foundations: the one error type, the typed option fields every face reads, the
configs, and the runtime (device, threads, seeding, the optimizer). Imports nothing above."""

__version__ = "0.1.0"
