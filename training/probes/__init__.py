"""Analyses of the paper's hypotheses; :mod:`training.probes.retrieval` is the in-context retrieval probe."""

from .retrieval import (
    IMAGE_LENGTHS,
    MODALITIES,
    PAPER_LENGTHS,
    ProbeConfig,
    RetrievalExample,
    glyph_vocabulary,
    grid_example,
    render_grid,
    run_retrieval_probe,
    summarize,
    symbol_vocabulary,
    text_example,
)

__all__ = [
    "IMAGE_LENGTHS",
    "MODALITIES",
    "PAPER_LENGTHS",
    "ProbeConfig",
    "RetrievalExample",
    "glyph_vocabulary",
    "grid_example",
    "render_grid",
    "run_retrieval_probe",
    "summarize",
    "symbol_vocabulary",
    "text_example",
]
