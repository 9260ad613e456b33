"""Warm start: the weights of a shipped stage (its ONNX encoder and decoder) back into a torch net.

The shipped graphs are the only copy of the trained weights that travels with
the repository, so they are what a later run (another machine, a GPU)
continues from. The exporter keeps parameter names for embeddings, norms and
biases; a Linear's weight is stored transposed under a generated name
(`graph_weights`). A tensor the graphs do not hold keeps the net's initial
value: a control the shipped nets did not have starts at zero, so the warm
net computes what the shipped one did.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

PREFIX = "net."
GATHERED = "gathered:"  # graph_weights' key of a 2-D table a Gather reads


def graph_weights(path: Path, linears: list[str], layer_norms: list[str]) -> dict[str, np.ndarray]:
    """Parameter name (without 'net.') -> array: the named tensors, and the transposed weights of the
    Linear layers `linears` (in the order the graph runs them).

    A Linear's MatMul is found by the named bias added to its result. Biases of equal value are stored
    once under one name (the chord stage's cross- and self-attention output biases get identical updates),
    so the MatMuls are matched to `linears` by their order in the graph, which follows the forward pass.
    """
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path)).graph
    arrays = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    weights = {name[len(PREFIX):]: a for name, a in arrays.items() if name.startswith(PREFIX)}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    matmuls = []  # (weight, bias) initializer names of each Linear, in graph order
    for node in graph.node:
        if node.op_type != "MatMul" or node.input[1] not in arrays or node.input[1].startswith(PREFIX):
            continue
        biases = [i for a in consumers.get(node.output[0], []) if a.op_type == "Add" for i in a.input
                  if i.startswith(PREFIX) and i.endswith(".bias")]
        if biases:
            matmuls.append((node.input[1], biases[0]))
    if len(matmuls) != len(linears):
        raise ValueError(f"{path.name}: {len(matmuls)} weight MatMuls for {len(linears)} Linear layers")
    for name, (weight, bias) in zip(linears, matmuls):
        weights[f"{name}.weight"], weights[f"{name}.bias"] = arrays[weight].T, arrays[bias]
    norms = [node for node in graph.node if node.op_type == "LayerNormalization"]
    if len(norms) == len(layer_norms):  # (shared-value scales and shifts are stored once, too)
        for name, node in zip(layer_norms, norms):
            weights[f"{name}.weight"], weights[f"{name}.bias"] = arrays[node.input[1]], arrays[node.input[2]]
    for node in graph.node:  # tables the exporter folded into one (TokenEmbedding's concatenated tables)
        if node.op_type in ("Gather", "GatherND") and arrays.get(node.input[0], np.empty(0)).ndim == 2:
            weights.setdefault(f"{GATHERED}{node.input[0]}", arrays[node.input[0]])
    for name, array in arrays.items():  # the heads' type embedding, unsqueezed for all_types
        if array.ndim == 3 and array.shape[0] == 1 and not name.startswith(PREFIX):
            weights.setdefault("heads.type_embed.weight", array[0])
    return weights


def graph_modules(net: torch.nn.Module, part: str, kind: type) -> list[str]:
    """The `kind` layers whose weights the stage's encoder or decoder graph holds, in forward order."""
    names = [n for n, m in net.named_modules() if isinstance(m, kind) and n != "heads.type_head"]
    in_encoder = [n for n in names if n.startswith(("encoder.", "video_proj", "memory_ln")) or n.endswith(".cross.kv")]
    if part == "encoder":
        return in_encoder
    return [n for n in names if n not in in_encoder]


def load_shipped(net: torch.nn.Module, folder: Path, stage: str) -> list[str]:
    """Copy `stage`'s shipped weights from `folder` into `net`; returns the parameter names left as they were."""
    found: dict[str, np.ndarray] = {}
    for part in ("encoder", "decoder"):
        weights = graph_weights(folder / f"{stage}.{part}.onnx", graph_modules(net, part, torch.nn.Linear),
                                graph_modules(net, part, torch.nn.LayerNorm))
        _split_folded_tables(net, weights, part)
        found.update({name: array for name, array in weights.items() if not name.startswith(GATHERED)})
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


def _split_folded_tables(net: torch.nn.Module, found: dict[str, np.ndarray], part: str) -> None:
    """A TokenEmbedding's tables where the graph holds them as one folded table (the exporter's optimiser
    folds the concatenation of small tables into a constant): split back by the tables' sizes, in order."""
    from ..nets.layers import TokenEmbedding

    folded = [a for k, a in found.items() if k.startswith(GATHERED)]
    for prefix, module in net.named_modules():
        in_part = (prefix == "source_embed") == (part == "encoder")  # the token encoder's, or the decoder's
        if not isinstance(module, TokenEmbedding) or not in_part or f"{prefix}.fields.0.weight" in found:
            continue
        tables = [f"{prefix}.{kind}.{i}.weight" for kind, group in (("fields", module.fields), ("context", module.context))
                  for i in range(len(group))]
        sizes = [e.num_embeddings for e in (*module.fields, *module.context)]
        match = [a for a in folded if a.shape == (sum(sizes), module.d_model)]
        if len(match) == 1:
            found.update(zip(tables, np.split(match[0], np.cumsum(sizes)[:-1])))


def shipped_net(folder: Path, stage: str, net_config: dict) -> torch.nn.Module:
    """`stage`'s net as shipped in `folder` (config from its manifest entry, weights from its graphs), in eval mode."""
    from ..nets import NETS, config_from_dict

    net = NETS[stage][1](config_from_dict(stage, net_config))
    load_shipped(net, folder, stage)
    return net.eval()
