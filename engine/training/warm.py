"""Warm start: the weights of a shipped stage (its ONNX encoder and decoder) back into a torch net.

The shipped graphs are the only copy of the trained weights that travels with
the repository, so they are what a later run (another machine, a GPU)
continues from. The exporter keeps parameter names for embeddings, norms and
biases; a Linear's weight is stored transposed under a generated name, and is
found as the MatMul operand whose result gets the named bias added. Tensors the
graphs do not hold keep the net's own initial values: a control the shipped
nets did not have (a new context embedding starts at zero, so the warm net
computes what the shipped one did), and parameters the exporter pruned as
dead code (the chord stage's cross-attention queries over its one-slot memory).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

PREFIX = "net."


def graph_weights(path: Path) -> dict[str, np.ndarray]:
    """Parameter name (without 'net.') -> array, for the named tensors and the transposed Linear weights."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    arrays = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    weights = {name[len(PREFIX):]: a for name, a in arrays.items() if name.startswith(PREFIX)}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    for node in graph.node:
        if node.op_type != "MatMul" or node.input[1] not in arrays or node.input[1].startswith(PREFIX):
            continue
        for add in consumers.get(node.output[0], []):
            bias = next((i for i in add.input if i.startswith(PREFIX) and i.endswith(".bias")), None)
            if add.op_type == "Add" and bias is not None:
                weights.setdefault(bias[len(PREFIX):-len("bias")] + "weight", arrays[node.input[1]].T)
    for name, array in arrays.items():  # the heads' type embedding, unsqueezed for all_types
        if array.ndim == 3 and array.shape[0] == 1 and not name.startswith(PREFIX):
            weights.setdefault("heads.type_embed.weight", array[0])
    return weights


def load_shipped(net: torch.nn.Module, folder: Path, stage: str) -> list[str]:
    """Copy `stage`'s shipped weights from `folder` into `net`; returns the parameter names left as they were."""
    found: dict[str, np.ndarray] = {}
    for part in ("encoder", "decoder"):
        found.update(graph_weights(folder / f"{stage}.{part}.onnx"))
    state = net.state_dict()
    kept = []
    with torch.no_grad():
        for name, tensor in state.items():
            array = found.get(name)
            if array is None:
                kept.append(name)
                if ".context." in name:  # a control the shipped net did not read: adds nothing yet
                    tensor.zero_()
            elif tuple(array.shape) == tuple(tensor.shape):
                tensor.copy_(torch.from_numpy(np.array(array)))
            elif array.ndim == 2 and array.shape[1] == tensor.shape[1] and array.shape[0] < tensor.shape[0]:
                tensor[:array.shape[0]] = torch.from_numpy(np.array(array))  # an embedding that grew (more bins)
            else:
                raise ValueError(f"{stage} {name}: shipped shape {array.shape} does not fit {tuple(tensor.shape)}")
    return kept
