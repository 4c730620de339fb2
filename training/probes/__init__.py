"""Analyses of the paper's hypotheses; :mod:`training.probes.retrieval` is the in-context retrieval probe."""

from .retrieval import IMAGE_LENGTHS, MODALITIES, PAPER_LENGTHS, ProbeConfig, run_retrieval_probe, summarize

__all__ = ["IMAGE_LENGTHS", "MODALITIES", "PAPER_LENGTHS", "ProbeConfig", "run_retrieval_probe", "summarize"]
