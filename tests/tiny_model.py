"""Write a tiny, random-weight llama-architecture GGUF that the real llama-server can load.

The model is for tests and demos: about 240 KB with the defaults, written in well under a
second, loaded by llama-server in a fraction of a second. It has

* the ``llama`` architecture with random F16 weights (F32 norms), so its text is noise:
  assert on structure, ``finish_reason`` and ``usage``, never on content;
* a GPT-2-style byte-level BPE vocabulary: the 256 byte tokens, a few merges (the
  ``tokenizer.ggml.merges`` key is mandatory for the ``gpt2`` tokenizer) and the special tokens
  ``<|endoftext|>``, ``<|im_start|>`` and ``<|im_end|>``;
* an embedded ChatML chat template, so ``/v1/chat/completions`` works without ``--chat-template``.

It serves ``/v1/chat/completions`` and ``/v1/completions``, and ``/v1/embeddings`` when the server
runs with ``--embeddings --pooling mean``.

Usage::

    python -m tests.tiny_model OUT.gguf [--layers 2] [--hidden 64] [--heads 4] [--ffn 128]
        [--kv-heads 4] [--vocab-size N] [--quant f16|q4_0]

Needs the ``gguf`` and ``numpy`` packages (``pip install 'airpods[models]'``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["CHATML_TEMPLATE", "SPECIAL_TOKENS", "write_tiny_gguf", "main"]

CHATML_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")

# quant -> (ggml type of the matrices, of the output layer)
_QUANTS = {"f16": ("F16", "F16"), "q4_0": ("Q4_0", "Q8_0")}

# Merges in GPT-2's byte-to-unicode alphabet ("Ġ" is the space byte). Each merged token is
# added to the vocabulary right after the 256 byte tokens, in this order.
_MERGES = ("Ġ t", "Ġ a", "h e", "i n", "r e", "o n", "Ġt he")


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible mapping of the 256 byte values to printable unicode characters."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    mapping: dict[int, str] = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def _vocab() -> tuple[list[str], list[int], list[str]]:
    """(tokens, token types, merges) of the tiny byte-level BPE vocabulary."""
    from gguf import TokenType

    byte_chars = _bytes_to_unicode()
    tokens = [byte_chars[b] for b in range(256)]
    types = [int(TokenType.NORMAL)] * 256
    for merge in _MERGES:
        left, right = merge.split(" ")
        tokens.append(left + right)
        types.append(int(TokenType.NORMAL))
    for special in SPECIAL_TOKENS:
        tokens.append(special)
        types.append(int(TokenType.CONTROL))
    assert len(set(tokens)) == len(tokens), "duplicate token in the tiny vocabulary"
    return tokens, types, list(_MERGES)


def write_tiny_gguf(
    path: Path,
    *,
    layers: int = 2,
    hidden: int = 64,
    heads: int = 4,
    ffn: int = 128,
    context_length: int = 2048,
    seed: int = 0,
    kv_heads: int | None = None,
    vocab_size: int | None = None,
    quant: str = "f16",
) -> Path:
    """Write the tiny model to ``path`` (atomically: temp file in the same folder, then rename).

    Returns ``path``. ``hidden`` must be a multiple of ``heads``, with an even head size.
    ``kv_heads`` (default: ``heads``) below ``heads`` makes a grouped-query-attention model;
    ``heads`` must be a multiple of it.

    For a model that streams as fast as a real one of the same shape (benchmarks):
    ``vocab_size`` pads the vocabulary with plain tokens (``w0``, ``w1``...; the output layer
    and sampling grow with it), and ``quant = "q4_0"`` stores the matrices in Q4_0 blocks
    (the output layer in Q8_0), about the bytes per weight of a Q4_K_M file; ``hidden`` and
    ``ffn`` must then be multiples of 32.
    """
    import gguf
    import numpy as np

    if layers < 1 or hidden < 1 or heads < 1 or ffn < 1:
        raise ValueError("layers, hidden, heads and ffn must be positive")
    if hidden % heads or (hidden // heads) % 2:
        raise ValueError(f"hidden ({hidden}) must be a multiple of heads ({heads}), even per head")
    kv_heads = heads if kv_heads is None else kv_heads
    if kv_heads < 1 or heads % kv_heads:
        raise ValueError(f"heads ({heads}) must be a multiple of kv_heads ({kv_heads})")
    if quant not in _QUANTS:
        raise ValueError(f"quant {quant!r} is not one of {', '.join(_QUANTS)}")
    if quant != "f16" and (hidden % 32 or ffn % 32):
        raise ValueError(f"{quant} needs hidden ({hidden}) and ffn ({ffn}) multiples of 32")

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A name that does not end in .gguf, so that nothing globbing *.gguf sees a partial file.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")

    tokens, types, merges = _vocab()
    if vocab_size is not None:
        if vocab_size < len(tokens):
            raise ValueError(f"vocab_size must be at least {len(tokens)}")
        tokens += [f"w{i}" for i in range(vocab_size - len(tokens))]
        types += [int(gguf.TokenType.NORMAL)] * (vocab_size - len(types))
    n_vocab = len(tokens)
    head_dim = hidden // heads
    kv_width = kv_heads * head_dim
    rng = np.random.default_rng(seed)
    block, out_block = _QUANTS[quant]

    def weight(rows: int, cols: int, kind: str | None = None) -> tuple[np.ndarray, Any]:
        # numpy shape (rows, cols) becomes ggml ne = [cols, rows], what llama.cpp expects.
        qtype = getattr(gguf.GGMLQuantizationType, kind or block)
        if qtype == gguf.GGMLQuantizationType.F16:
            return (rng.standard_normal((rows, cols)) * 0.02).astype(np.float16), None
        values = rng.standard_normal((rows, cols), dtype=np.float32) * 0.02
        return gguf.quants.quantize(values, qtype), qtype

    def add(name: str, tensor: tuple[np.ndarray, Any]) -> None:
        writer.add_tensor(name, tensor[0], raw_dtype=tensor[1])

    def norm() -> np.ndarray:
        return np.ones(hidden, dtype=np.float32)

    writer = gguf.GGUFWriter(tmp, arch="llama")
    try:
        writer.add_name("airpods-tiny")
        writer.add_file_type(int(getattr(gguf.LlamaFileType, f"MOSTLY_{block}")))
        writer.add_vocab_size(n_vocab)
        writer.add_context_length(context_length)
        writer.add_embedding_length(hidden)
        writer.add_block_count(layers)
        writer.add_feed_forward_length(ffn)
        writer.add_head_count(heads)
        writer.add_head_count_kv(kv_heads)
        writer.add_rope_dimension_count(head_dim)
        writer.add_layer_norm_rms_eps(1e-5)

        writer.add_tokenizer_model("gpt2")
        writer.add_tokenizer_pre("gpt-2")
        writer.add_token_list(tokens)
        writer.add_token_types(types)
        writer.add_token_merges(merges)
        writer.add_bos_token_id(tokens.index("<|endoftext|>"))
        writer.add_eos_token_id(tokens.index("<|im_end|>"))
        writer.add_add_bos_token(False)
        writer.add_chat_template(CHATML_TEMPLATE)

        add("token_embd.weight", weight(n_vocab, hidden))
        for i in range(layers):
            writer.add_tensor(f"blk.{i}.attn_norm.weight", norm())
            add(f"blk.{i}.attn_q.weight", weight(hidden, hidden))
            add(f"blk.{i}.attn_k.weight", weight(kv_width, hidden))
            add(f"blk.{i}.attn_v.weight", weight(kv_width, hidden))
            add(f"blk.{i}.attn_output.weight", weight(hidden, hidden))
            writer.add_tensor(f"blk.{i}.ffn_norm.weight", norm())
            add(f"blk.{i}.ffn_gate.weight", weight(ffn, hidden))
            add(f"blk.{i}.ffn_up.weight", weight(ffn, hidden))
            add(f"blk.{i}.ffn_down.weight", weight(hidden, ffn))
        writer.add_tensor("output_norm.weight", norm())
        add("output.weight", weight(n_vocab, hidden, out_block))

        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        writer.close()
        tmp.unlink(missing_ok=True)
        raise
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.tiny_model",
        description="Write a tiny random-weight llama GGUF (for tests; its output is noise).",
    )
    parser.add_argument("out", type=Path, help="output file, e.g. tiny.gguf")
    parser.add_argument("--layers", type=int, default=2)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--ffn", type=int, default=128)
    parser.add_argument("--kv-heads", type=int, default=None)
    parser.add_argument("--context-length", type=int, default=2048)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vocab-size", type=int, default=None,
                        help="pad the vocabulary with plain tokens up to this size")
    parser.add_argument("--quant", choices=sorted(_QUANTS), default="f16")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        out = write_tiny_gguf(
            args.out,
            layers=args.layers,
            hidden=args.hidden,
            heads=args.heads,
            ffn=args.ffn,
            context_length=args.context_length,
            seed=args.seed,
            kv_heads=args.kv_heads,
            vocab_size=args.vocab_size,
            quant=args.quant,
        )
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    size = out.stat().st_size
    print(f"{out} ({size} bytes, {time.perf_counter() - start:.2f}s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
