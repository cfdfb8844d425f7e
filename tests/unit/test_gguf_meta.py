"""GGUF header parsing on generated files with known metadata (tests.tiny_model, gguf)."""

from __future__ import annotations

from pathlib import Path

import pytest

from airpods.errors import UsageError
from airpods.gguf_meta import FILE_TYPES, TENSOR_TYPES, read_header, read_meta
from tests.tiny_model import _MERGES, SPECIAL_TOKENS, write_tiny_gguf

N_VOCAB = 256 + len(_MERGES) + len(SPECIAL_TOKENS)


def tiny_params(layers: int, hidden: int, heads: int, ffn: int, kv_heads: int) -> int:
    """Parameters of tests.tiny_model, counted by hand from its tensor list."""
    kv = kv_heads * hidden // heads
    per_layer = 2 * hidden + 2 * hidden * hidden + 2 * kv * hidden + 3 * ffn * hidden
    return 2 * N_VOCAB * hidden + layers * per_layer + hidden


@pytest.mark.parametrize(
    "layers,hidden,heads,ffn,kv_heads,ctx",
    [(2, 64, 4, 128, 4, 2048), (3, 128, 8, 256, 2, 4096), (1, 32, 2, 64, 1, 512)],
)
def test_tiny_metadata(tmp_path: Path, layers, hidden, heads, ffn, kv_heads, ctx) -> None:
    path = write_tiny_gguf(tmp_path / "m.gguf", layers=layers, hidden=hidden, heads=heads,
                           ffn=ffn, kv_heads=kv_heads, context_length=ctx)
    meta = read_meta(path)
    assert meta.architecture == "llama"
    assert meta.quantization == "F16"
    assert meta.context_length == ctx
    assert meta.layers == layers
    assert meta.heads == heads
    assert meta.kv_heads == kv_heads
    assert meta.head_dim == hidden // heads
    assert meta.parameters == tiny_params(layers, hidden, heads, ffn, kv_heads)
    assert meta.name == "airpods-tiny"


def test_q4_0_with_a_padded_vocabulary(tmp_path: Path) -> None:
    """The benchmark's model of a real one's shape: Q4_0 matrices, a Q8_0 output layer, the
    vocabulary padded with plain tokens after the tiny one (special tokens keep their ids)."""
    import gguf

    path = write_tiny_gguf(tmp_path / "q.gguf", layers=2, hidden=64, heads=4, ffn=128,
                           vocab_size=1000, quant="q4_0")
    meta = read_meta(path)
    assert meta.quantization == "Q4_0"
    assert meta.parameters == tiny_params(2, 64, 4, 128, 4) + 2 * (1000 - N_VOCAB) * 64
    reader = gguf.GGUFReader(path)
    types = {t.name: t.tensor_type.name for t in reader.tensors}
    assert types["blk.0.ffn_up.weight"] == types["token_embd.weight"] == "Q4_0"
    assert types["output.weight"] == "Q8_0" and types["output_norm.weight"] == "F32"
    tokens = reader.fields["tokenizer.ggml.tokens"]
    assert len(tokens.data) == 1000
    assert bytes(tokens.parts[tokens.data[N_VOCAB - 1]]).decode() == SPECIAL_TOKENS[-1]
    assert bytes(tokens.parts[tokens.data[N_VOCAB]]).decode() == "w0"


@pytest.mark.parametrize(("options", "message"), [
    ({"quant": "q8"}, "quant 'q8' is not one of"),
    ({"quant": "q4_0", "hidden": 48, "heads": 4, "ffn": 64}, "multiples of 32"),
    ({"vocab_size": 10}, f"vocab_size must be at least {N_VOCAB}"),
])
def test_bad_shape_options(tmp_path: Path, options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        write_tiny_gguf(tmp_path / "m.gguf", **options)
    assert list(tmp_path.iterdir()) == []


def test_header_skips_a_large_vocabulary_and_keeps_counts(tmp_path: Path) -> None:
    gguf = pytest.importorskip("gguf")
    np = pytest.importorskip("numpy")
    path = tmp_path / "v.gguf"
    w = gguf.GGUFWriter(path, arch="qwen2")
    w.add_file_type(int(gguf.LlamaFileType.MOSTLY_Q4_K_M))
    w.add_block_count(24)
    w.add_embedding_length(896)
    w.add_head_count(14)
    w.add_head_count_kv(2)
    w.add_context_length(32768)
    w.add_token_list([f"t{i}" for i in range(20000)])
    w.add_tensor("a", np.zeros((3, 5), dtype=np.float32))
    w.add_tensor("b", np.zeros((7,), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    header = read_header(path)
    assert header.get("tokenizer.ggml.tokens") == 20000  # only the length is kept
    meta = read_meta(path)
    assert (meta.architecture, meta.quantization, meta.context_length) == ("qwen2", "Q4_K_M",
                                                                            32768)
    assert (meta.layers, meta.heads, meta.kv_heads, meta.head_dim) == (24, 14, 2, 64)
    assert meta.parameters == 3 * 5 + 7
    # The data section starts where the gguf package put it (aligned after the header).
    reader = gguf.GGUFReader(path)
    assert header.data_offset == reader.data_offset


def test_quantization_guessed_from_tensors_without_file_type(tmp_path: Path) -> None:
    gguf = pytest.importorskip("gguf")
    np = pytest.importorskip("numpy")
    path = tmp_path / "nf.gguf"
    w = gguf.GGUFWriter(path, arch="llama")
    w.add_tensor("big", np.zeros((64, 64), dtype=np.float16))
    w.add_tensor("norm", np.zeros((64,), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    meta = read_meta(path)
    assert meta.quantization == "F16"
    assert meta.context_length is None and meta.layers is None


def test_per_layer_kv_heads(tmp_path: Path) -> None:
    gguf = pytest.importorskip("gguf")
    path = tmp_path / "pl.gguf"
    w = gguf.GGUFWriter(path, arch="openelm")
    w.add_block_count(3)
    w.add_head_count([4, 8, 8])
    w.add_head_count_kv([1, 2, 4])
    w.add_key_length(16)
    w.add_value_length(32)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    meta = read_meta(path)
    assert meta.kv_heads_per_layer == (1, 2, 4)
    assert (meta.kv_heads, meta.heads, meta.head_dim_k, meta.head_dim_v) == (4, 8, 16, 32)


def test_not_gguf_and_truncated(tmp_path: Path) -> None:
    bad = tmp_path / "x.gguf"
    bad.write_bytes(b"PK\x03\x04 not a model")
    with pytest.raises(UsageError, match="is not a GGUF file"):
        read_meta(bad)
    good = write_tiny_gguf(tmp_path / "t.gguf")
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(good.read_bytes()[:3000])
    with pytest.raises(UsageError, match="not a valid GGUF header"):
        read_meta(cut)
    empty = tmp_path / "e.gguf"
    empty.write_bytes(b"")
    with pytest.raises(UsageError, match="is not a GGUF file"):
        read_meta(empty)


def test_tables_match_the_gguf_package() -> None:
    gguf = pytest.importorskip("gguf")
    for ftype in gguf.LlamaFileType:
        if ftype.name == "GUESSED":
            continue
        assert FILE_TYPES[int(ftype)] == ftype.name.removeprefix("MOSTLY_").replace(
            "ALL_F32", "F32"), ftype
    for qtype in gguf.GGMLQuantizationType:
        block, size = gguf.GGML_QUANT_SIZES[qtype]
        assert TENSOR_TYPES[int(qtype)] == (qtype.name, block, size)
