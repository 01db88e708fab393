"""Replace the DENSIFY ops of a sparse TFLite model by dense constants (tf2onnx cannot
convert sparse tensors: "cannot reshape array of size 96 into shape (16,1,1,24)").

For every DENSIFY op the dense weights are decoded in numpy from the tensor's
SparsityParameters (CSR on the last dimension), checked bit for bit against what the LiteRT
interpreter itself computes for that op, attached as a constant buffer to the DENSIFY output,
and the op, its sparse input tensor and the DENSIFY opcode are removed. The result gives
bit-identical outputs to the sparse original.

Needs the `convert` extra (ai-edge-litert). Used by models/convert.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from ai_edge_litert import schema_py_generated as schema
from ai_edge_litert.interpreter import Interpreter, OpResolverType
from ai_edge_litert.tools import flatbuffer_utils

_NUMPY_TYPES = {
    schema.TensorType.FLOAT32: np.float32,
    schema.TensorType.FLOAT16: np.float16,
    schema.TensorType.INT8: np.int8,
    schema.TensorType.UINT8: np.uint8,
    schema.TensorType.INT32: np.int32,
}
_OPERATOR_NAMES = {
    v: k for k, v in schema.BuiltinOperator.__dict__.items() if not k.startswith("_")
}


def sparse_to_dense(tensor: Any, raw: Any) -> np.ndarray:
    """Dense values of a TFLite sparse constant (no block sparsity in these models)."""
    sparsity = tensor.sparsity
    shape = list(tensor.shape)
    values = np.frombuffer(bytes(raw), dtype=_NUMPY_TYPES[tensor.type])
    if sparsity.blockMap is not None and len(sparsity.blockMap):
        raise NotImplementedError("block-sparse tensors are not supported")
    order = list(sparsity.traversalOrder)
    if sorted(order) != list(range(len(shape))):
        raise ValueError(f"unexpected traversal order {order} for shape {shape}")
    dense = np.zeros([shape[d] for d in order], dtype=values.dtype)  # in traversal order

    def walk(level: int, parent: int, coords: list[int]) -> None:
        metadata = sparsity.dimMetadata[level]
        if metadata.format == schema.DimensionType.DENSE:
            positions = [(parent * metadata.denseSize + i, i) for i in range(metadata.denseSize)]
        else:  # SPARSE_CSR: segments index into the indices of this level
            segments = np.asarray(metadata.arraySegments.values, dtype=np.int64)
            indices = np.asarray(metadata.arrayIndices.values, dtype=np.int64)
            positions = [
                (p, int(indices[p])) for p in range(segments[parent], segments[parent + 1])
            ]
        for position, index in positions:
            if level + 1 == len(order):
                dense[(*coords, index)] = values[position]
            else:
                walk(level + 1, position, [*coords, index])

    walk(0, 0, [])
    return np.ascontiguousarray(dense.transpose(np.argsort(order)))


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype == np.float16:
        a, b = a.view(np.uint16), b.view(np.uint16)
    return a.shape == b.shape and a.dtype == b.dtype and bool(np.array_equal(a, b))


def densify(src: Path, dst: Path) -> int:
    """Write a dense copy of `src` to `dst`; returns the number of DENSIFY ops removed."""
    model = flatbuffer_utils.read_model(str(src))
    if len(model.subgraphs) != 1:
        raise ValueError(f"{src}: expected one subgraph")
    graph = model.subgraphs[0]

    # Reference values: the interpreter's own DENSIFY outputs (builtin kernels, no XNNPACK).
    interpreter = Interpreter(
        model_path=str(src),
        experimental_preserve_all_tensors=True,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    interpreter.allocate_tensors()
    for detail in interpreter.get_input_details():
        interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
    interpreter.invoke()

    densify_ops = [
        i
        for i, op in enumerate(graph.operators)
        if _OPERATOR_NAMES[
            flatbuffer_utils.get_builtin_code_from_operator_code(
                model.operatorCodes[op.opcodeIndex]
            )
        ]
        == "DENSIFY"
    ]
    dropped: set[int] = set()
    for i in densify_ops:
        op = graph.operators[i]
        sparse_index, dense_index = op.inputs[0], op.outputs[0]
        sparse = graph.tensors[sparse_index]
        values = sparse_to_dense(sparse, model.buffers[sparse.buffer].data)
        if not _same_bits(interpreter.get_tensor(dense_index), values):
            raise ValueError(f"{src}: densified {sparse.name} differs from the interpreter's")
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(values.tobytes(), dtype=np.uint8)
        model.buffers.append(buffer)
        graph.tensors[dense_index].buffer = len(model.buffers) - 1
        if any(sparse_index in other.inputs for j, other in enumerate(graph.operators) if j != i):
            raise ValueError(f"{src}: sparse tensor {sparse.name} has other consumers")
        dropped.add(sparse_index)

    removed = set(densify_ops)
    graph.operators = [op for i, op in enumerate(graph.operators) if i not in removed]
    keep = [i for i in range(len(graph.tensors)) if i not in dropped]
    remap = {old: new for new, old in enumerate(keep)}
    graph.tensors = [graph.tensors[i] for i in keep]

    def renumber(indices: list[int]) -> list[int]:
        return [remap[i] if i >= 0 else i for i in indices]  # -1 = optional input absent

    for op in graph.operators:
        op.inputs, op.outputs = renumber(op.inputs), renumber(op.outputs)
        if op.intermediates:
            op.intermediates = renumber(op.intermediates)
    graph.inputs, graph.outputs = renumber(graph.inputs), renumber(graph.outputs)
    for signature in model.signatureDefs or []:
        for tensor_map in (signature.inputs or []) + (signature.outputs or []):
            tensor_map.tensorIndex = remap[tensor_map.tensorIndex]

    used_codes = sorted({op.opcodeIndex for op in graph.operators})
    code_map = {old: new for new, old in enumerate(used_codes)}
    model.operatorCodes = [model.operatorCodes[i] for i in used_codes]
    for op in graph.operators:
        op.opcodeIndex = code_map[op.opcodeIndex]
    # Empty the orphaned sparse buffers rather than deleting them: buffer indices stay valid.
    referenced = {t.buffer for t in graph.tensors} | {m.buffer for m in model.metadata or []}
    for index, buffer in enumerate(model.buffers):
        if index not in referenced and index != 0:
            buffer.data = None
    flatbuffer_utils.write_model(model, str(dst))
    return len(densify_ops)
