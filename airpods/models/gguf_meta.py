"""What a GGUF file says about its model, read from the header only (never the tensor data).

A GGUF file is a header (magic, version, key/value metadata, tensor infos) followed by the
tensor data. Everything airpods needs (architecture, quantization, context length, layer and
head counts, parameter count from the tensor shapes) is in the header, a few MB at most even for
a 70B model: its 150k-token vocabulary dominates it.

The `gguf` package's GGUFReader builds one numpy view per element of every array, so a real
vocabulary (Qwen2.5: 151k tokens, 151k merges) takes it seconds; this parser skips those arrays
with plain `struct` over an mmap of the header and takes milliseconds (bench figures in the
commit). The numbering (value types, file types, tensor types) is the GGUF spec's; a unit test
checks the tables below against the `gguf` package so they cannot drift.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from airpods.errors import UsageError

MAGIC = b"GGUF"
MAX_COUNT = 1 << 24  # more tensors or keys than this is a corrupt header, not a model
SMALL_ARRAY = 4096  # number arrays up to this length are kept (per-layer head counts)

# GGUF value types: type id -> struct format of one scalar (strings and arrays apart).
_SCALARS = {0: "B", 1: "b", 2: "H", 3: "h", 4: "I", 5: "i", 6: "f", 7: "?", 10: "Q", 11: "q",
            12: "d"}
_STRING, _ARRAY = 8, 9

# llama.cpp's `general.file_type` (enum llama_ftype) -> the quant tag used in file names.
FILE_TYPES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 7: "Q8_0", 8: "Q5_0", 9: "Q5_1", 10: "Q2_K",
    11: "Q3_K_S", 12: "Q3_K_M", 13: "Q3_K_L", 14: "Q4_K_S", 15: "Q4_K_M", 16: "Q5_K_S",
    17: "Q5_K_M", 18: "Q6_K", 19: "IQ2_XXS", 20: "IQ2_XS", 21: "Q2_K_S", 22: "IQ3_XS",
    23: "IQ3_XXS", 24: "IQ1_S", 25: "IQ4_NL", 26: "IQ3_S", 27: "IQ3_M", 28: "IQ2_S", 29: "IQ2_M",
    30: "IQ4_XS", 31: "IQ1_M", 32: "BF16", 36: "TQ1_0", 37: "TQ2_0", 38: "MXFP4_MOE",
    39: "NVFP4", 40: "Q1_0",
}

# ggml tensor types -> (name, elements per block, bytes per block).
TENSOR_TYPES = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 40),
    10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74), 18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50), 20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82), 23: ("IQ4_XS", 256, 136), 24: ("I8", 1, 1), 25: ("I16", 1, 2),
    26: ("I32", 1, 4), 27: ("I64", 1, 8), 28: ("F64", 1, 8), 29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2), 34: ("TQ1_0", 256, 54), 35: ("TQ2_0", 256, 66), 39: ("MXFP4", 32, 17),
    40: ("NVFP4", 64, 36), 41: ("Q1_0", 128, 18),
}


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    type_id: int

    @property
    def elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int | None:
        known = TENSOR_TYPES.get(self.type_id)
        if known is None:
            return None
        _, block, size = known
        return self.elements // block * size


@dataclass(frozen=True)
class GGUFHeader:
    version: int
    metadata: dict[str, Any]  # long arrays (vocabularies) are replaced by their length
    tensors: tuple[TensorInfo, ...]
    data_offset: int  # where the tensor data starts

    def get(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(key, default)


@dataclass(frozen=True)
class ModelMeta:
    """The facts `models list` / `models info` show and the memory estimate uses."""

    architecture: str | None
    quantization: str | None
    parameters: int | None
    context_length: int | None
    layers: int | None
    heads: int | None
    kv_heads: int | None  # the largest per-layer count (GQA: fewer than `heads`)
    head_dim_k: int | None
    head_dim_v: int | None
    name: str | None = None
    # K/V heads per layer when the model varies them (some architectures do); else empty.
    kv_heads_per_layer: tuple[int, ...] = field(default=())
    split_count: int = 1

    @property
    def head_dim(self) -> int | None:
        return self.head_dim_k


class _Reader:
    """Bounds-checked little/big-endian reads over a buffer."""

    def __init__(self, buf: Any, order: str) -> None:
        self.buf, self.order, self.pos = buf, order, 0
        self.size = len(buf)

    def take(self, fmt: str) -> Any:
        st = struct.Struct(self.order + fmt)
        if self.pos + st.size > self.size:
            raise ValueError("the header runs past the end of the file")
        (value,) = st.unpack_from(self.buf, self.pos)
        self.pos += st.size
        return value

    def string(self) -> str:
        n = self.take("Q")
        if n > self.size - self.pos:
            raise ValueError("a string runs past the end of the file")
        raw = bytes(self.buf[self.pos:self.pos + n])
        self.pos += n
        return raw.decode("utf-8", errors="replace")

    def skip_strings(self, count: int) -> None:
        unpack, buf, pos, size = struct.Struct(self.order + "Q").unpack_from, self.buf, self.pos, \
            self.size
        for _ in range(count):
            if pos + 8 > size:
                raise ValueError("a string array runs past the end of the file")
            (n,) = unpack(buf, pos)
            pos += 8 + n
        if pos > size:
            raise ValueError("a string array runs past the end of the file")
        self.pos = pos

    def value(self, type_id: int) -> Any:
        if type_id in _SCALARS:
            return self.take(_SCALARS[type_id])
        if type_id == _STRING:
            return self.string()
        if type_id == _ARRAY:
            return self.array()
        raise ValueError(f"unknown metadata value type {type_id}")

    def array(self) -> Any:
        item_type, count = self.take("I"), self.take("Q")
        # Lists of strings (vocabulary, merges) are never read: skipped whatever their length.
        if count > SMALL_ARRAY or item_type == _STRING:
            if item_type == _STRING:
                self.skip_strings(count)
            elif item_type in _SCALARS:
                self.pos += count * struct.calcsize(self.order + _SCALARS[item_type])
                if self.pos > self.size:
                    raise ValueError("an array runs past the end of the file")
            else:
                raise ValueError(f"unsupported array item type {item_type}")
            return count  # only its length is kept
        if item_type in _SCALARS:  # one unpack for the whole array, not one per item
            st = struct.Struct(f"{self.order}{count}{_SCALARS[item_type]}")
            if self.pos + st.size > self.size:
                raise ValueError("an array runs past the end of the file")
            values = list(st.unpack_from(self.buf, self.pos))
            self.pos += st.size
            return values
        return [self.value(item_type) for _ in range(count)]


def read_header(path: Path) -> GGUFHeader:
    """Parse the header of the GGUF file at `path`; one clear UsageError when it is not one."""
    try:
        with open(path, "rb") as handle:
            if handle.read(4) != MAGIC:
                raise UsageError(f"{path} is not a GGUF file",
                                 hint="llama-server loads .gguf models")
            # mmap: only the header's pages are ever touched, whatever the file's size.
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                return _parse(buf)
    except (ValueError, struct.error, OverflowError) as exc:
        raise UsageError(f"{path}: not a valid GGUF header ({exc})",
                         hint="the file is damaged or incomplete; download it again") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


def _parse(buf: Any) -> GGUFHeader:
    (version,) = struct.unpack_from("<I", buf, 4)
    order = "<"
    if version & 0xFFFF == 0:  # written on a big-endian machine
        order = ">"
        (version,) = struct.unpack_from(">I", buf, 4)
    if version < 2:
        raise ValueError(f"GGUF version {version} is too old (llama.cpp reads 2 and later)")
    r = _Reader(buf, order)
    r.pos = 8
    n_tensors, n_kv = r.take("Q"), r.take("Q")
    if n_tensors > MAX_COUNT or n_kv > MAX_COUNT:
        raise ValueError(f"implausible counts ({n_tensors} tensors, {n_kv} keys)")
    metadata: dict[str, Any] = {}
    for _ in range(n_kv):
        key = r.string()
        metadata[key] = r.value(r.take("I"))
    tensors = []
    for _ in range(n_tensors):
        name = r.string()
        n_dims = r.take("I")
        if n_dims > 8:
            raise ValueError(f"tensor {name} has {n_dims} dimensions")
        shape = tuple(r.take("Q") for _ in range(n_dims))
        type_id = r.take("I")
        r.take("Q")  # its offset in the data section: not needed
        tensors.append(TensorInfo(name, shape, type_id))
    alignment = metadata.get("general.alignment", 32)
    if not isinstance(alignment, int) or alignment <= 0:
        alignment = 32
    data_offset = -(-r.pos // alignment) * alignment
    return GGUFHeader(version, metadata, tuple(tensors), data_offset)


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def quantization(header: GGUFHeader) -> str | None:
    """The quant tag: `general.file_type`, else the most common type among 2-D weights."""
    ftype = header.get("general.file_type")
    if isinstance(ftype, int) and not isinstance(ftype, bool):
        return FILE_TYPES.get(ftype & ~1024, f"type {ftype}")  # 1024: llama.cpp's "guessed" bit
    counts: dict[str, int] = {}
    for t in header.tensors:
        if len(t.shape) >= 2 and t.type_id in TENSOR_TYPES:
            label = TENSOR_TYPES[t.type_id][0]
            counts[label] = counts.get(label, 0) + t.elements
    return max(counts, key=counts.__getitem__) if counts else None


def model_meta(header: GGUFHeader) -> ModelMeta:
    """The model facts in a parsed header (None where the file does not say)."""
    arch = header.get("general.architecture")
    arch = arch if isinstance(arch, str) else None

    def key(name: str) -> Any:
        return header.get(f"{arch}.{name}") if arch else None

    layers = _int(key("block_count"))
    heads_raw, kv_raw = key("attention.head_count"), key("attention.head_count_kv")
    heads = _int(heads_raw) if not isinstance(heads_raw, list) else max(heads_raw, default=None)
    per_layer: tuple[int, ...] = ()
    if isinstance(kv_raw, list):
        per_layer = tuple(int(v) for v in kv_raw)
        kv_heads = max(per_layer, default=None)
    else:
        kv_heads = _int(kv_raw) if kv_raw is not None else heads  # absent: no GQA
    embd = _int(key("embedding_length"))
    head_k = _int(key("attention.key_length"))
    head_v = _int(key("attention.value_length"))
    if head_k is None and embd and heads:
        head_k = embd // heads
    if head_v is None:
        head_v = head_k
    params = sum(t.elements for t in header.tensors) if header.tensors else None
    split = _int(header.get("split.count")) or 1
    name = header.get("general.name")
    return ModelMeta(
        architecture=arch,
        quantization=quantization(header),
        parameters=params,
        context_length=_int(key("context_length")),
        layers=layers,
        heads=heads,
        kv_heads=kv_heads,
        head_dim_k=head_k,
        head_dim_v=head_v,
        name=name if isinstance(name, str) else None,
        kv_heads_per_layer=per_layer,
        split_count=split,
    )


def read_meta(path: Path) -> ModelMeta:
    return model_meta(read_header(path))
