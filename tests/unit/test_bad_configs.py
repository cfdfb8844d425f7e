"""A table of broken user files, each run through the real CLI in a subprocess.

Every one must give exit code 2 and exactly one line on stderr that names the file and the key
path (and the line where it is simple to know), never a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NEW_SERVICE = '[services.extra]\nimage = "docker.io/library/busybox:latest"\ncontainer = "extra"\n'


@dataclass(frozen=True)
class Bad:
    id: str
    text: str | None  # None: the --config file does not exist
    key_path: str  # "" when the error has no key (syntax error, missing file)
    expect: str  # also in the message
    line: int | None = None


# fmt: off
CASES = [
    Bad("toml-syntax", '[runtime]\nnetwork = "x"\n[cli\n', "", "TOML syntax error", 3),
    Bad("duplicate-key", "[cli]\nfailure_log_lines = 1\nfailure_log_lines = 2\n", "",
        "already exists", 3),
    Bad("unknown-top-level", "colour = 1\n", "colour", "unknown key 'colour'", 1),
    Bad("unknown-service-key", '[services.llamacpp]\ndefualt_model = "x"\n',
        "services.llamacpp.defualt_model", "did you mean 'default_model'?", 2),
    Bad("unknown-gpu-key", "[services.llamacpp.gpu]\nforce_gpu = true\n",
        "services.llamacpp.gpu.force_gpu", "did you mean 'force_cpu'?", 2),
    Bad("port-not-int", '[services.llamacpp]\nports = [{ host = "abc", container = 8080 }]\n',
        "services.llamacpp.ports[0].host", "valid integer", 2),
    Bad("enabled-not-bool", '[services.llamacpp]\nenabled = "maybe"\n',
        "services.llamacpp.enabled", "valid boolean", 2),
    Bad("negative-timeout", "[services.llamacpp.health]\ntimeout_s = -1\n",
        "services.llamacpp.health.timeout_s", "greater than 0", 2),
    Bad("port-zero", "[services.llamacpp]\nports = [{ host = 0, container = 8080 }]\n",
        "services.llamacpp.ports[0].host", "greater than or equal to 1", 2),
    Bad("port-too-big", "[services.llamacpp]\nports = [{ host = 70000, container = 8080 }]\n",
        "services.llamacpp.ports[0].host", "less than or equal to 65535", 2),
    Bad("duplicate-host-port",
        "[services.open-webui]\nports = [{ host = 8080, container = 8080 }]\n",
        "services.open-webui.ports[0].host", "already published by services.llamacpp.ports[0]", 2),
    Bad("wildcard-port-clash",
        '[services.llamacpp-ui]\nenabled = true\n'
        'ports = [{ host = 3000, container = 8080, host_ip = "0.0.0.0" }]\n',
        "services.llamacpp-ui.ports[0].host", "services.open-webui.ports[0]", 3),
    Bad("bad-host-ip",
        '[services.llamacpp]\nports = [{ host = 8080, container = 8080, host_ip = "localhost" }]\n',
        "services.llamacpp.ports[0].host_ip", "not an IP address", 2),
    Bad("image-upper-case", '[services.llamacpp]\nimage = "UPPER CASE:tag"\n',
        "services.llamacpp.image", "not a valid image reference", 2),
    Bad("image-empty-component", '[services.llamacpp]\nimage = "ghcr.io//x"\n',
        "services.llamacpp.image", "not a valid image reference", 2),
    Bad("image-per-accelerator", '[services.llamacpp.images]\ntpu = "ghcr.io/x/y:z"\n',
        "services.llamacpp.images.tpu", "invalid key", 2),
    Bad("volume-mode",
        "[services.llamacpp.volumes]\n"
        'models = { source = "airpods_llamacpp_models", target = "/models", mode = "rx" }\n',
        "services.llamacpp.volumes.models.mode", "'ro' or 'rw'", 2),
    Bad("volume-relative-target",
        '[services.llamacpp.volumes]\nmodels = { source = "m", target = "models" }\n',
        "services.llamacpp.volumes.models.target", "absolute path", 2),
    Bad("unknown-kind", '[services.llamacpp]\nkind = "llama"\n',
        "services.llamacpp.kind", "unknown kind 'llama'", 2),
    Bad("depends-on-unknown", '[services.open-webui]\ndepends_on = ["llamacp"]\n',
        "services.open-webui.depends_on[0]", "did you mean 'llamacpp'?", 2),
    Bad("depends-on-cycle", '[services.llamacpp]\ndepends_on = ["open-webui"]\n',
        "services.llamacpp.depends_on", "dependency cycle", 2),
    Bad("template-undefined",
        '[services.llamacpp.command_args]\nmodel = "/models/{{ default_modle }}"\n',
        "services.llamacpp.command_args.model", "did you mean 'default_model'?", 2),
    Bad("template-cycle",
        "[services.llamacpp]\ndefault_model = \"{{ services['llamacpp-ui'].default_model }}\"\n",
        "services.llamacpp.default_model", "template cycle", 2),
    Bad("template-syntax", '[services.llamacpp]\ndefault_model = "{{ oops"\n',
        "services.llamacpp.default_model", "template syntax error", 2),
    Bad("template-unsafe", "[services.llamacpp]\ndefault_model = \"{{ ''.__class__ }}\"\n",
        "services.llamacpp.default_model", "unsafe template", 2),
    Bad("bad-accelerator", '[runtime]\naccelerator = "tpu"\n',
        "runtime.accelerator", "unknown accelerator 'tpu'", 2),
    Bad("bad-memory", '[services.llamacpp.resources]\nmemory = "lots"\n',
        "services.llamacpp.resources.memory", "not a memory size", 2),
    Bad("bad-service-name",
        '[services."Big Model"]\nimage = "docker.io/library/busybox:latest"\n'
        'pod = "big"\ncontainer = "big"\n',
        'services."Big Model"', "not a valid service name", 1),
    Bad("bad-env-name", '[services.llamacpp.env]\n"1BAD" = "x"\n',
        "services.llamacpp.env.1BAD", "not a valid environment variable name", 2),
    Bad("env-table", "[services.llamacpp.env]\nNESTED = { a = 1 }\n",
        "services.llamacpp.env.NESTED", "not a table or list", 2),
    Bad("max-pulls-zero", "[cli]\nmax_concurrent_pulls = 0\n",
        "cli.max_concurrent_pulls", "greater than or equal to 1", 2),
    Bad("command-arg-table", "[services.llamacpp.command_args]\nextra = { a = 1 }\n",
        "services.llamacpp.command_args.extra", "a table is not allowed here", 2),
    Bad("command-arg-subtable", '[services.llamacpp.command_args.model]\npath = "x"\n',
        "services.llamacpp.command_args.model", "a table is not allowed here", 1),
    Bad("duplicate-container",
        '[services.llamacpp-ui]\ncontainer = "airpods-llamacpp-server"\n',
        "services.llamacpp-ui.container", "also used by service 'llamacpp'", 2),
    # A generic service gets its pod, container and alias from its name, but needs an image.
    Bad("new-service-without-image", '[services.extra]\ncontainer = "extra"\n',
        "services.extra", "no image", 1),
    Bad("services-not-a-table", "services = 5\n", "services", "valid dictionary", 1),
    Bad("missing-file", None, "", "file not found"),
]
# fmt: on


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 22
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_config_is_one_clear_line(case: Bad, tmp_path: Path) -> None:
    config = tmp_path / f"{case.id}.toml"
    if case.text is not None:
        config.write_text(case.text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRPODS_")}
    env["XDG_CONFIG_HOME"] = str(tmp_path / "xdg")
    result = subprocess.run(
        [sys.executable, "-m", "airpods", "--config", str(config), "config", "validate"],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
    )
    err = result.stderr
    assert result.returncode == 2, err
    assert "Traceback" not in err
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("airpods: "), err
    assert result.stdout == ""
    where = f"{config}:{case.line}: " if case.line else f"{config}: "
    assert where in err, err
    if case.key_path:
        assert f" {case.key_path}: " in err, err
    assert case.expect in err, err
