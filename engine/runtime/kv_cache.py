"""A decoder's self-attention cache appended in place (issue 19).

An in-place decoder graph (exporters/onnx_export.py `export_decoder_in_place`) takes per-layer caches
(batch, heads, capacity, head_dim) plus `seqlens_k` (tokens held per row) and `total_sequence_length`,
and ONNX Runtime's GroupQueryAttention writes each step's K/V at slot seqlens_k. Bound through IOBinding
as both past_* input and present_* output, a cache is one buffer for the whole segment: a step copies
no cache in or out and allocates nothing (the concatenating graph copied and reallocated every cache
each step: at 2,048 cached tokens a step went from 4.1 to 2.2 ms, benchmarks/bench_vmusprod.py).

A step's cost grows with the capacity, not only with the tokens held (256 tokens: 1.03 ms in 320 slots,
1.40 ms in 2,049; a cache filled to its last slot is slower again): size a cache to what it will hold.

The step's small inputs (token, context, the lengths) are copied into buffers bound once; the memory
inputs (cross K/V, memory bars) are bound again only when the caller hands over a new dict of them.
"""
from __future__ import annotations

import numpy as np
import onnxruntime as ort

LENGTH_INPUTS = ("seqlens_k", "total_sequence_length")


def is_in_place(session: ort.InferenceSession) -> bool:
    """Whether `session` is an in-place decoder graph (it reads the GroupQueryAttention lengths)."""
    return {i.name for i in session.get_inputs()} >= set(LENGTH_INPUTS)


class InPlaceCache:
    """One segment's caches of an in-place decoder graph, and the binding that runs its steps."""

    def __init__(self, session: ort.InferenceSession, cache_names: list[str], shape: tuple[int, int, int, int]):
        self.session, self.capacity, self.length = session, shape[2], 0
        self.binding = session.io_binding()
        self._held: dict[str, tuple[np.ndarray, ort.OrtValue]] = {}  # input buffers and what binds them
        self.memory = None  # the dict of cross K/V bound last
        for name in cache_names:  # past_k_0 ... : bound as present_k_0 ... too
            value = self._bind(name, np.zeros(shape, dtype=np.float32))
            self.binding.bind_ortvalue_output(name.replace("past", "present", 1), value)
        batch = shape[0]
        self._bind("seqlens_k", np.zeros(batch, dtype=np.int32))
        self._bind("total_sequence_length", np.zeros((), dtype=np.int32))
        self.outputs = []
        for output in session.get_outputs():
            if output.name.startswith("present"):
                continue
            buffer = np.zeros((batch, *output.shape[1:]), dtype=np.float32)
            self.binding.bind_ortvalue_output(output.name, ort.OrtValue.ortvalue_from_numpy(buffer))
            self.outputs.append(buffer)

    def _bind(self, name: str, buffer: np.ndarray) -> ort.OrtValue:
        value = ort.OrtValue.ortvalue_from_numpy(buffer)
        self.binding.bind_ortvalue_input(name, value)
        self._held[name] = (buffer, value)
        return value

    def _set(self, name: str, array: np.ndarray) -> None:
        held = self._held.get(name)
        if held is not None and held[0].shape == array.shape and held[0].dtype == array.dtype:
            np.copyto(held[0], array)
        else:
            self._bind(name, np.array(array, copy=True, order="C"))

    def step(self, feeds: dict[str, np.ndarray], cross: dict[str, np.ndarray],
             memory_bar: np.ndarray) -> list[np.ndarray]:
        """One step: `feeds` (token, context) copied in; the cross K/V and the memory bars bound when `cross`
        is a new dict (the caller replaces it, never changes it). Returns the graph's other outputs (the
        logits), valid until the next step."""
        if self.length >= self.capacity:
            raise ValueError(f"in-place cache full ({self.capacity} tokens): start a new segment")
        if cross is not self.memory:
            for name, array in {**cross, "memory_bar": memory_bar}.items():
                self._bind(name, np.ascontiguousarray(array))
            self.memory = cross
        for name, array in feeds.items():
            self._set(name, array)
        self._held["seqlens_k"][0].fill(self.length)
        self._held["total_sequence_length"][0].fill(self.length + 1)
        self.session.run_with_iobinding(self.binding)
        self.length += 1
        return self.outputs
