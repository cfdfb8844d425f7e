"""What a GGUF file says about its model, read from the header only (never the tensor data).

A GGUF file is a header (magic, version, key/value metadata, tensor infos) followed by the
tensor data. Everything airpods needs (architecture, quantization, context length, layer and
head counts, parameter count from the tensor shapes) is in the header, a few MB at most even for
a 70B model: its 150k-token vocabulary dominates it.

The `gguf` package's GGUFReader builds one numpy view per element of every array, so a real
vocabulary (Qwen2.5: 151k tokens, 151k merges) takes it seconds; this parser skips those arrays
with plain `struct` over an mmap of the header and takes milliseconds. The numbering (value,
file and tensor types) is the GGUF spec's; a unit test holds the tables to the `gguf` package.
"""

from __future__ import annotations

import mmap
import struct
from pathlib import Path
from typing import Any

from airpods.errors import UsageError
from airpods.record import field, record

MAGIC = b"GGUF"
VERSIONS = (2, 3)  # what llama.cpp reads; 1 is gone, a later one may change the layout
# The header is untrusted input: every length it gives is capped before it is used, so a
# hostile file is one clear error, never a RecursionError, a huge allocation or a long loop.
MAX_COUNT = 1 << 24  # more tensors or keys than this is a corrupt header, not a model
SMALL_ARRAY = 4096  # number arrays up to this length are kept (per-layer head counts)
MAX_DEPTH = 4  # arrays of arrays: real files nest at most 2 deep (llama.cpp reads only 1)
MAX_KEPT = 1 << 20  # values kept from short arrays, all keys together: memory stays bounded
MAX_STRING = 1 << 24  # chat templates are tens of KB; 16 MiB of one string is not a model
MAX_NAME = 1 << 16  # a key or tensor name (llama.cpp's tensor names are at most 64 bytes)
MAX_DIMS = 4  # GGML_MAX_DIMS
MAX_ELEMENTS = 1 << 48  # per tensor: 2^48 weights is ~500 TB at 2 bits each
# Model facts beyond these are a damaged or hostile header, not a model: refused, never turned
# into a memory estimate ("fits: yes" for 2^64 layers). Today's largest models are well inside
# (Llama 4: 10M context; DeepSeek-V3: 61 layers, 7168 wide).
LIMITS = {"context_length": 1 << 28, "block_count": 1 << 14, "embedding_length": 1 << 20,
          "attention.head_count": 1 << 16, "attention.head_count_kv": 1 << 16,
          "attention.key_length": 1 << 16, "attention.value_length": 1 << 16}

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


@record
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


@record
class GGUFHeader:
    version: int
    metadata: dict[str, Any]  # long arrays (vocabularies) are replaced by their length
    tensors: tuple[TensorInfo, ...]
    data_offset: int  # where the tensor data starts

    def get(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(key, default)


@record
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
        self.kept = 0  # values kept from short arrays so far (MAX_KEPT)

    def take(self, fmt: str) -> Any:
        st = struct.Struct(self.order + fmt)
        if self.pos + st.size > self.size:
            raise ValueError("the header runs past the end of the file")
        (value,) = st.unpack_from(self.buf, self.pos)
        self.pos += st.size
        return value

    def string(self, limit: int = MAX_STRING) -> str:
        n = self.take("Q")
        if n > self.size - self.pos:
            raise ValueError("a string runs past the end of the file")
        if n > limit:
            raise ValueError(f"a string of {n} bytes (the limit is {limit})")
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

    def value(self, type_id: int, depth: int = 0) -> Any:
        if type_id in _SCALARS:
            return self.take(_SCALARS[type_id])
        if type_id == _STRING:
            return self.string()
        if type_id == _ARRAY:
            return self.array(depth + 1)
        raise ValueError(f"unknown metadata value type {type_id}")

    def array(self, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise ValueError(f"arrays nested more than {MAX_DEPTH} deep")
        item_type, count = self.take("I"), self.take("Q")
        if item_type not in _SCALARS and item_type not in (_STRING, _ARRAY):
            raise ValueError(f"unknown array item type {item_type}")
        if count > self.size - self.pos:  # every item takes at least one byte
            raise ValueError(f"an array of {count} items runs past the end of the file")
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
        self.kept += count
        if self.kept > MAX_KEPT:
            raise ValueError(f"more than {MAX_KEPT} metadata values in short arrays")
        if item_type in _SCALARS:  # one unpack for the whole array, not one per item
            st = struct.Struct(f"{self.order}{count}{_SCALARS[item_type]}")
            if self.pos + st.size > self.size:
                raise ValueError("an array runs past the end of the file")
            values = list(st.unpack_from(self.buf, self.pos))
            self.pos += st.size
            return values
        return [self.value(item_type, depth) for _ in range(count)]


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
    except (ValueError, struct.error, OverflowError, RecursionError, MemoryError) as exc:
        raise UsageError(f"{path}: not a valid GGUF header ({_short(exc)})",
                         hint="the file is damaged or incomplete; download it again") from None
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror or exc}") from None


def _short(exc: BaseException) -> str:
    """The reason, on one line, printable, and short (a hostile key name can be 64 KiB)."""
    text = escape(str(exc) or type(exc).__name__)
    return text if len(text) <= 200 else text[:200] + "..."


def escape(text: str) -> str:
    """`text` with control characters written as escapes (airpods.masking.printable, the one
    helper): metadata is untrusted, and a terminal must not act on what a header says."""
    from airpods.masking import printable

    return printable(text)


def _parse(buf: Any) -> GGUFHeader:
    if len(buf) < 8:
        raise ValueError("the header runs past the end of the file")
    (version,) = struct.unpack_from("<I", buf, 4)
    order = "<"
    if version & 0xFFFF == 0:  # written on a big-endian machine
        order = ">"
        (version,) = struct.unpack_from(">I", buf, 4)
    if version not in VERSIONS:
        raise ValueError(f"GGUF version {version} is not one llama.cpp reads (2 or 3)")
    r = _Reader(buf, order)
    r.pos = 8
    n_tensors, n_kv = r.take("Q"), r.take("Q")
    if n_tensors > MAX_COUNT or n_kv > MAX_COUNT:
        raise ValueError(f"implausible counts ({n_tensors} tensors, {n_kv} keys)")
    metadata: dict[str, Any] = {}
    for _ in range(n_kv):
        key = r.string(MAX_NAME)
        metadata[key] = r.value(r.take("I"))
    tensors = []
    for _ in range(n_tensors):
        name = r.string(MAX_NAME)
        n_dims = r.take("I")
        if n_dims > MAX_DIMS:
            raise ValueError(f"tensor {escape(name)!r} has {n_dims} dimensions")
        shape = tuple(r.take("Q") for _ in range(n_dims))
        elements = 1
        for d in shape:
            elements *= d
        if elements > MAX_ELEMENTS:
            raise ValueError(f"tensor {escape(name)!r} has implausible dimensions {shape}")
        type_id = r.take("I")
        r.take("Q")  # its offset in the data section: not needed
        tensors.append(TensorInfo(name, shape, type_id))
    alignment = metadata.get("general.alignment", 32)
    if not isinstance(alignment, int) or alignment <= 0:
        alignment = 32
    data_offset = -(-r.pos // alignment) * alignment
    return GGUFHeader(version, metadata, tuple(tensors), data_offset)


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{value} where a count belongs")
    return int(value)


def _plausible(name: str, value: int | None, arch: str = "") -> int | None:
    """`value` of the model key `name`, refused when no real model could have it."""
    limit = LIMITS.get(name)
    if value is not None and limit is not None and not 0 <= value <= limit:
        raise ValueError(f"implausible {arch}.{name} = {value} (a real model has 0 to {limit})")
    return value


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
    """The model facts in a parsed header (None where the file does not say).

    ValueError when a fact is implausible (block_count near 2^64): a damaged or hostile file.
    """
    arch = header.get("general.architecture")
    arch = arch if isinstance(arch, str) else None

    def key(name: str) -> Any:
        return header.get(f"{arch}.{name}") if arch else None

    def count(name: str) -> int | None:
        raw = key(name)
        if isinstance(raw, list):  # per layer: the largest counts
            return max((_plausible(name, _int(v), arch or "") or 0 for v in raw), default=None)
        return _plausible(name, _int(raw), arch or "")

    layers = count("block_count")
    heads = count("attention.head_count")
    kv_raw = key("attention.head_count_kv")
    per_layer: tuple[int, ...] = ()
    if isinstance(kv_raw, list):
        per_layer = tuple(_plausible("attention.head_count_kv", _int(v), arch or "") or 0
                          for v in kv_raw)
        kv_heads = max(per_layer, default=None)
    else:
        kv_heads = count("attention.head_count_kv") if kv_raw is not None else heads  # no GQA
    embd = count("embedding_length")
    head_k = count("attention.key_length")
    head_v = count("attention.value_length")
    if head_k is None and embd and heads:
        head_k = embd // heads
    if head_v is None:
        head_v = head_k
    params = sum(t.elements for t in header.tensors) if header.tensors else None
    split = _int(header.get("split.count"))
    split = 1 if split is None else split
    if not 1 <= split <= 9999:  # llama.cpp's split names have 5 digits
        raise ValueError(f"implausible split.count = {split}")
    name = header.get("general.name")
    return ModelMeta(
        architecture=arch,
        quantization=quantization(header),
        parameters=params,
        context_length=count("context_length"),
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
    """The model facts of the GGUF at `path`; one UsageError when the file is not a readable,
    plausible GGUF (list, info and doctor show it as damaged and carry on)."""
    return _checked_meta(path, read_header(path))


def _checked_meta(path: Path, header: GGUFHeader) -> ModelMeta:
    try:
        return model_meta(header)
    except (ValueError, TypeError, OverflowError) as exc:
        raise UsageError(f"{path}: damaged GGUF metadata ({_short(exc)})",
                         hint="the file is damaged or not a model; download it again") from None


def unknown_tensor_types(header: GGUFHeader) -> list[int]:
    """Tensor type ids this version of airpods (and so probably llama.cpp) does not know."""
    return sorted({t.type_id for t in header.tensors if t.type_id not in TENSOR_TYPES})


def validate(path: Path) -> ModelMeta:
    """What `models import` checks before copying: the whole header parses, every tensor type
    is known, the metadata is plausible and the tensor data fits in the file."""
    header = read_header(path)
    meta = _checked_meta(path, header)
    unknown = unknown_tensor_types(header)
    if unknown:
        raise UsageError(f"{path}: unknown tensor type {unknown[0]} (not a GGUF llama.cpp reads)",
                         hint="the file is damaged, or needs a newer airpods and llama.cpp")
    need = header.data_offset + sum(t.nbytes or 0 for t in header.tensors)
    size = path.stat().st_size
    if meta.split_count == 1 and size < need:
        raise UsageError(f"{path} is truncated: its header describes {need} bytes, the file has "
                         f"{size}", hint="the download or copy was cut short; fetch it again")
    return meta
