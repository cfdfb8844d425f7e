"""llama-server's settings stay typed (spec.serving) from render to the hooks that read them:
no hook parses back the argv or the preset INI rendered from the same values."""

from __future__ import annotations

from pathlib import Path

from airpods import kinds
from airpods.kinds import llama_router as LR
from airpods.record import replace
from airpods.spec import ServedPreset
from tests.unit.test_router import ROUTER, spec_of

SINGLE = """
[services.llamacpp]
default_model = "m.gguf"
command_args = { ctx_size = 2048, api_key = "sk-single-test-key-0123456789,second" }
"""


def test_single_mode_hooks_read_the_typed_settings_not_the_argv(tmp_path: Path) -> None:
    spec = spec_of(SINGLE, tmp_path)
    llama = kinds.get("llama-server")
    assert spec.serving is not None
    assert (spec.serving.model, spec.serving.alias, spec.serving.ctx_size) == (
        "/models/m.gguf", "m", 2048)
    blank = replace(spec, command=(), env={})  # the argv text is not where they look
    assert llama.model_path(blank) == "/models/m.gguf"
    assert llama.context_size(blank) == 2048
    assert llama.model_id(blank) == "m"
    assert llama.ready_check(blank).model_ids == ("m",)
    assert llama.api_key(replace(blank, secret_files=())) == "sk-single-test-key-0123456789"


def test_router_hooks_read_the_typed_presets_not_the_ini(tmp_path: Path) -> None:
    spec = spec_of(ROUTER, tmp_path)
    assert spec.serving is not None and spec.serving.router
    assert spec.serving.presets == (
        ServedPreset("fast", "/models/qwen2.5-0.5b-instruct-q4_k_m.gguf", 8192, True),
        # ctx_size before c, as the INI section holds both and the estimate always read it
        ServedPreset("coder", "/models/sub/coder.gguf", 32768, False),
    )
    llama = kinds.get("llama-server")
    blank = replace(spec, command=(), config_files=())  # no argv, no INI to read back
    assert LR.preload_ids(blank) == ("fast",)
    assert llama.model_files(blank) == ("/models/qwen2.5-0.5b-instruct-q4_k_m.gguf",
                                        "/models/sub/coder.gguf")
    assert [p[1] for p in llama.required_files(blank)] == list(llama.model_files(blank))
    assert llama.ready_check(blank).model_ids == ("fast",)
