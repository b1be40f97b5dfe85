"""Which graph runs a weights file: the one beside it or in the user's cache when it was exported from
those very bytes; else exported once into the cache where torch is installed (the ``train`` extra),
else refused with one line saying how to export it."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from arraydaemon.core.errors import UserError
from arraydaemon.localizers.neural.runtime import GRAPH_SUFFIX, NeuralGraph, graph_path
from arraydaemon.localizers.neural.weights import read_metadata, weights_digest

log = logging.getLogger(__name__)


def cache_dir() -> Path:
    """The user's cache of graphs exported on first use (``$XDG_CACHE_HOME/arraydaemon/graphs``)."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "arraydaemon" / "graphs"


def export_command(weights: Path) -> str:
    return f"arraydaemon export-onnx --weights {weights}"


def load_graph(weights: Path) -> NeuralGraph:
    """The graph of the weights file ``weights``: the one beside it or in the cache when it was
    exported from these very bytes, else exported now into the cache (needs torch), else a
    :class:`UserError` saying how to export it."""
    weights = Path(weights)
    read_metadata(weights)  # not weights at all: one line saying so, before looking for graphs
    digest = weights_digest(weights)
    cached = cache_dir() / f"{digest[:32]}{GRAPH_SUFFIX}"
    stale = None
    for path in (graph_path(weights), cached):
        if path.is_file():
            graph = NeuralGraph(path, str(path))
            if graph.weights_digest == digest:
                return graph
            stale = stale or path
    try:
        from arraydaemon.localizers.neural.export import export_weights
    except ImportError:
        what = f"{stale} was exported from other weights" if stale else f"no graph {graph_path(weights).name} beside it"
        raise UserError(f"{weights}: {what}; export it with `{export_command(weights)}` where torch is "
                        "installed (pip install 'arraydaemon[train]')") from None
    log.warning("exporting the graph of %s once, into %s", weights, cached)
    try:
        export_weights(weights, cached)
    except OSError as exc:  # e.g. a service user whose home cannot be written
        raise UserError(f"{weights}: cannot write its graph to {cached.parent} ({exc.strerror}); export it with "
                        f"`{export_command(weights)}`, or set XDG_CACHE_HOME") from None
    return NeuralGraph(cached, str(cached))
