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
LONG_NAME = "s" * 49  # one over MAX_SERVICE_NAME


def _llamacpp(line: str) -> str:
    return f"[services.llamacpp]\n{line}\n"


def _template(source: str) -> str:
    """A user file whose llamacpp.default_model (line 2) is the template `source`."""
    return _llamacpp(f"default_model = '{source}'")


@dataclass(frozen=True)
class Bad:
    id: str
    text: str | None  # None: the --config file does not exist
    key_path: str  # "" when the error has no key (syntax error, missing file)
    expect: str  # also in the message
    line: int | None = None
    env: tuple[tuple[str, str], ...] = ()  # environment variables set for the run


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
    # Names are matched whole: a trailing newline is not a valid end of a name.
    Bad("image-trailing-newline", _llamacpp('image = "ghcr.io/ggml-org/llama.cpp:server\\n"'),
        "services.llamacpp.image", "not a valid image reference", 2),
    Bad("images-trailing-newline", '[services.llamacpp.images]\ncpu = "ghcr.io/x/y:z\\n"\n',
        "services.llamacpp.images", "not a valid image reference", 1),
    Bad("pod-trailing-newline", _llamacpp('pod = "airpods-llamacpp\\n"'),
        "services.llamacpp.pod", "not a valid name", 2),
    Bad("container-trailing-newline", _llamacpp('container = "airpods-llamacpp-server\\n"'),
        "services.llamacpp.container", "not a valid name", 2),
    Bad("network-trailing-newline", '[runtime]\nnetwork = "airpods\\n"\n',
        "runtime.network", "not a valid network name", 2),
    Bad("alias-trailing-newline", _llamacpp('network_aliases = ["llamacpp\\n"]'),
        "services.llamacpp.network_aliases", "not a valid DNS name", 2),
    Bad("volume-source-trailing-newline",
        '[services.llamacpp.volumes]\n'
        'models = { source = "airpods_llamacpp_models\\n", target = "/models" }\n',
        "services.llamacpp.volumes.models.source", "control character", 2),
    Bad("volume-target-newline",
        '[services.llamacpp.volumes]\nmodels = { source = "m", target = "/models\\n" }\n',
        "services.llamacpp.volumes.models.target", "control character", 2),
    Bad("memory-trailing-newline", '[services.llamacpp.resources]\nmemory = "512m\\n"\n',
        "services.llamacpp.resources.memory", "not a memory size", 2),
    Bad("health-path-newline", '[services.llamacpp.health]\npath = "/health\\n"\n',
        "services.llamacpp.health.path", "control character", 2),
    Bad("capability-trailing-newline", _llamacpp('cap_add = ["CHOWN\\n"]'),
        "services.llamacpp.cap_add[0]", "should match pattern", 2),
    # A boolean is not a number (pydantic would read `true` as 1: port 1).
    Bad("port-host-bool", _llamacpp("ports = [{ host = true, container = 8080 }]"),
        "services.llamacpp.ports[0].host", "not a boolean", 2),
    Bad("port-container-bool", _llamacpp("ports = [{ host = 8080, container = false }]"),
        "services.llamacpp.ports[0].container", "not a boolean", 2),
    Bad("expected-status-bool", "[services.llamacpp.health]\nexpected_status = true\n",
        "services.llamacpp.health.expected_status", "not a boolean", 2),
    Bad("timeout-bool", "[services.llamacpp.health]\ntimeout_s = true\n",
        "services.llamacpp.health.timeout_s", "not a boolean", 2),
    Bad("max-pulls-bool", "[cli]\nmax_concurrent_pulls = true\n",
        "cli.max_concurrent_pulls", "not a boolean", 2),
    Bad("cpus-bool", "[services.llamacpp.resources]\ncpus = true\n",
        "services.llamacpp.resources.cpus", "not a boolean", 2),
    # Numbers are finite and in range.
    Bad("cpus-inf", "[services.llamacpp.resources]\ncpus = inf\n",
        "services.llamacpp.resources.cpus", "finite number", 2),
    Bad("cpus-nan", "[services.llamacpp.resources]\ncpus = nan\n",
        "services.llamacpp.resources.cpus", "finite number", 2),
    Bad("cpus-zero", "[services.llamacpp.resources]\ncpus = 0\n",
        "services.llamacpp.resources.cpus", "greater than 0", 2),
    Bad("cpus-negative", "[services.llamacpp.resources]\ncpus = -2.5\n",
        "services.llamacpp.resources.cpus", "greater than 0", 2),
    # Issue 23: it blamed "the built-in kind defaults" for the user's missing key.
    Bad("second-server-without-default-model",
        '[services.fast]\nkind = "llama-server"\nports = [{ host = 8091, container = 8080 }]\n',
        "services.fast", "needs default_model (a file in its model volume)", 1),
    Bad("memory-zero", '[services.llamacpp.resources]\nmemory = "0g"\n',
        "services.llamacpp.resources.memory", "more than 0", 2),
    Bad("memory-zero-decimal", '[services.llamacpp.resources]\nmemory = "0.0m"\n',
        "services.llamacpp.resources.memory", "more than 0", 2),
    Bad("memory-unit", '[services.llamacpp.resources]\nmemory = "16x"\n',
        "services.llamacpp.resources.memory", "not a memory size", 2),
    Bad("stop-timeout-nan", "[runtime]\nstop_timeout_s = nan\n",
        "runtime.stop_timeout_s", "finite number", 2),
    Bad("health-timeout-inf", "[services.llamacpp.health]\ntimeout_s = inf\n",
        "services.llamacpp.health.timeout_s", "finite number", 2),
    # Podman parses publish addresses with Go's net.ParseIP: no zone ids.
    Bad("host-ip-zone-id",
        _llamacpp('ports = [{ host = 8080, container = 8080, host_ip = "fe80::1%eth0" }]'),
        "services.llamacpp.ports[0].host_ip", "zone id", 2),
    # Names that become Podman names and hostnames are bounded.
    Bad("service-name-too-long",
        f'[services.{LONG_NAME}]\nimage = "docker.io/library/busybox:latest"\n'
        'pod = "p"\ncontainer = "c"\n',
        f"services.{LONG_NAME}", "at most 48", 1),
    Bad("alias-too-long", _llamacpp(f'network_aliases = ["{"a" * 64}"]'),
        "services.llamacpp.network_aliases", "at most 63", 2),
    # An override from the environment does not hide a bad value in the file.
    Bad("accelerator-hidden-by-env", '[runtime]\naccelerator = "tpu"\n',
        "runtime.accelerator", "unknown accelerator 'tpu'", 2,
        env=(("AIRPODS_ACCELERATOR", "cpu"),)),
    # Templates have resource limits and one-line errors.
    Bad("template-string-repeat", _template('{{ "a" * 10**9 }}'),
        "services.llamacpp.default_model", "template too costly", 2),
    Bad("template-huge-pow", _template("{{ 9**(9**9) }}"),
        "services.llamacpp.default_model", "template too costly", 2),
    Bad("template-list-repeat", _template("{{ ([1] * 10**8)|length }}"),
        "services.llamacpp.default_model", "template too costly", 2),
    Bad("template-big-range", _template("{{ range(10**9)|length }}"),
        "services.llamacpp.default_model", "Range too big", 2),
    Bad("template-nested-loops",
        _template("{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}"
                  "{% endfor %}"),
        "services.llamacpp.default_model", "too much work", 2),
    Bad("template-doubling-namespace",
        _template("{% set ns = namespace(s=\"ab\") %}{% for i in range(64) %}"
                  "{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}"),
        "services.llamacpp.default_model", "template too costly", 2),
    Bad("template-exponential-macro",
        _template("{% macro f(n) %}{% if n %}{{ f(n-1) }}{{ f(n-1) }}{% endif %}{% endmacro %}"
                  "{{ f(60) }}"),
        "services.llamacpp.default_model", "too much work", 2),
    Bad("template-format-width", _template("{{ \"%0999999999d\" % 1 }}"),
        "services.llamacpp.default_model", "template too costly", 2),
    Bad("template-ljust", _template("{{ \"x\".ljust(10**9) }}"),
        "services.llamacpp.default_model", "template too costly", 2),
    Bad("template-replace-growth",
        _template("{{ (\"a\" * 60000).replace(\"a\", \"bbbbbbbb\") }}"),
        "services.llamacpp.default_model", "template too costly", 2),
    Bad("template-join-growth",
        _template("{{ range(50000)|map(\"string\")|join(\"----\") }}"),
        "services.llamacpp.default_model", "template too costly", 2),
    Bad("template-value-too-long", _template("{{ \"a\" * 65536 }}{{ \"b\" }}"),
        "services.llamacpp.default_model", "the limit is 65536", 2),
    Bad("template-unknown-filter", _template("{{ name | uper }}"),
        "services.llamacpp.default_model", "unknown filter 'uper' (did you mean 'upper'?)", 2),
    Bad("replicas-zero", _llamacpp("replicas = 0"), "services.llamacpp.replicas",
        "must be a whole number from 1 to 64 (got 0)", 2),
    Bad("replicas-negative", _llamacpp("replicas = -2"), "services.llamacpp.replicas",
        "(got -2)", 2),
    Bad("replicas-not-whole", _llamacpp("replicas = 1.5"), "services.llamacpp.replicas",
        "(got 1.5)", 2),
    Bad("replicas-bool", _llamacpp("replicas = true"), "services.llamacpp.replicas",
        "(got True)", 2),
    Bad("replicas-huge", _llamacpp("replicas = 1000000000"), "services.llamacpp.replicas",
        "must be a whole number from 1 to 64 (got 1000000000)", 2),
    Bad("replicas-not-a-number", _llamacpp('replicas = "2x"'), "services.llamacpp.replicas",
        "(got '2x')", 2),
    Bad("replicas-past-65535",
        _llamacpp("replicas = 3\nports = [{ host = 65534, container = 8080 }]"),
        "services.llamacpp.replicas", "3 replicas need host ports 65534-65536 for ports[0], "
        "past 65535 (lower replicas to at most 2", 2),
    Bad("replicas-name-taken", _llamacpp("replicas = 2") + NEW_SERVICE.replace(
        "extra", "llamacpp-2"), "services.llamacpp.replicas",
        "replica 2 would be the service 'llamacpp-2', which this configuration already", 2),
    Bad("replicas-port-clash", _llamacpp("replicas = 2") + '[services.llamacpp-ui]\n'
        'enabled = true\n', "services.llamacpp.replicas",
        "replica 'llamacpp-2' (ports[0].host): host port 8081/tcp is already published by "
        "services.llamacpp-ui.ports[0]", 2),
    Bad("replicas-router", _llamacpp('mode = "router"\nreplicas = 2'),
        "services.llamacpp.replicas", "replicas apply to a single-model server", 3),
    Bad("replicas-on-gateway", '[services.gateway]\nreplicas = 2\n',
        "services.gateway.replicas", "is a key of llama-server services", 2),
    Bad("routing-strategy-unknown", '[services.gateway]\nrouting_strategy = "fastest"\n',
        "services.gateway.routing_strategy", "least-busy", 2),
    Bad("template-infinite-recursion",
        _template("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}"),
        "services.llamacpp.default_model", "template failed", 2),
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
    env.update(case.env)
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
    assert "<introspection>" not in err, err


def test_a_second_server_that_names_its_model_or_routes_needs_no_default_model(
        tmp_path: Path) -> None:
    from airpods.config.loader import load_config_text

    for text in ('[services.fast]\nkind = "llama-server"\nmode = "router"\n'
                 'ports = [{ host = 8091, container = 8080 }]\n',
                 '[services.fast]\nkind = "llama-server"\n'
                 'ports = [{ host = 8091, container = 8080 }]\n'
                 '[services.fast.command_args]\nmodel = "/models/x.gguf"\nalias = "x"\n'):
        loaded = load_config_text(tmp_path / "airpods.toml", text)
        assert "fast" in loaded.config.services
