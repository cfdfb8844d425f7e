"""`airpods export`: Kubernetes YAML and quadlet units from hand-made ContainerSpecs.

Pure rendering (no Podman). Every Kubernetes document is checked by the real
`kubernetes-validate --strict -k 1.30.0`; quadlet units are parsed and every key is checked
against the podman-systemd.unit(5) key lists embedded below. The real `podman kube play` runs
are in tests/integration/test_export_kube.py.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from airpods.errors import UsageError
from airpods.export.checks import quantity_memory
from airpods.export.kube import render_kube
from airpods.export.model_init import hf_url
from airpods.export.names import dns_label
from airpods.export.quadlet import render_quadlet
from airpods.record import replace
from airpods.spec import ContainerSpec, Health, Mount, PortMapping, SecretFile, ServingSettings

KEY = "sk-llama-0123456789abcdefghijklmnopqrstuv"
WEBUI_SECRET = "webui-secret-zyxwvutsrqponmlkjihgfedcba"


def llama(**changes) -> ContainerSpec:
    spec = ContainerSpec(
        service="llamacpp", kind="llama-server", image="ghcr.io/ggml-org/llama.cpp:server",
        image_reason="cpu: test", accelerator="cpu", pod="airpods-llamacpp",
        container="airpods-llamacpp-server", network="airpods", network_aliases=("llamacpp",),
        ports=(PortMapping("127.0.0.1", 8080, 8080),),
        mounts=(Mount("airpods_llamacpp_models", "/models", "ro"),),
        env={"LLAMA_ARG_NO_WEBUI": "1"},
        command=("--model", "/models/qwen.gguf", "--alias", "qwen", "--host", "0.0.0.0",
                 "--port", "8080", "--chat-template", "it's \"odd\" 100% $HOME",
                 "--api-key-file", "/run/secrets/llama-api-key"),
        secret_files=(SecretFile("airpods-llamacpp-llama-api-key", "/run/secrets/llama-api-key",
                                 KEY),),
        cap_drop=("ALL",), security_opt=("no-new-privileges",),
        health=Health("/health", 200, 900, 1.0, 8080),
        config_hash="abc123",
        serving=ServingSettings(model="/models/qwen.gguf", alias="qwen", api_keys=KEY),
    )
    return replace(spec, **changes)


def webui() -> ContainerSpec:
    return ContainerSpec(
        service="open-webui", kind="open-webui", image="ghcr.io/open-webui/open-webui:main",
        image_reason="cpu", accelerator="cpu", pod="airpods-open-webui",
        container="airpods-open-webui-server", network="airpods",
        network_aliases=("open-webui",), ports=(PortMapping("127.0.0.1", 3000, 8080),),
        mounts=(Mount("airpods_webui_data", "/app/backend/data", "rw"),),
        env={"OPENAI_API_BASE_URLS": "http://llamacpp:8080/v1;http://llamacpp-gpu:8080/v1",
             "OPENAI_API_KEYS": f"{KEY};{KEY}", "WEBUI_SECRET_KEY": WEBUI_SECRET,
             "ENABLE_PERSISTENT_CONFIG": "False", "OLLAMA_BASE_URL": ""},
        secret_env=frozenset({"OPENAI_API_KEYS", "WEBUI_SECRET_KEY"}),
        command=(), cap_drop=("ALL",), cap_add=("CHOWN", "SETUID"),
        security_opt=("no-new-privileges",), health=Health("/health", 200, 600, 1.0, 3000),
        depends_on=("llamacpp",),
    )


def gpu_llama() -> ContainerSpec:
    """Today's shape: the key in env (secret_env), CUDA, limits."""
    return llama(
        service="llamacpp-gpu", pod="airpods-llamacpp-gpu", container="airpods-llamacpp-gpu-s",
        network_aliases=("llamacpp-gpu",), ports=(PortMapping("127.0.0.1", 8081, 8080),
                                                  PortMapping("0.0.0.0", 9090, 9090)),
        accelerator="cuda", devices=("nvidia.com/gpu=all",), env={"LLAMA_API_KEY": KEY},
        secret_env=frozenset({"LLAMA_API_KEY"}), secret_files=(), memory="16g", cpus=2.5,
        command=("--model", "/models/qwen.gguf", "--n-gpu-layers", "all"),
        serving=ServingSettings(model="/models/qwen.gguf", api_keys=KEY),
    )


def rocm_llama() -> ContainerSpec:
    return llama(service="llamacpp-rocm", pod="airpods-llamacpp-rocm", container="rocm",
                 network_aliases=("llamacpp-rocm",), ports=(PortMapping("127.0.0.1", 8082, 8080),),
                 accelerator="rocm", devices=("/dev/kfd", "/dev/dri"), group_add=("44", "109"),
                 secret_files=(), command=("--model", "/models/qwen.gguf"),
                 serving=ServingSettings(model="/models/qwen.gguf"))


def stack() -> list[ContainerSpec]:
    return [llama(), gpu_llama(), rocm_llama(), webui()]


def docs_of(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d is not None]


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def container_of(docs: list[dict], deployment: str) -> dict:
    [container] = by_kind(docs, "Deployment")[deployment]["spec"]["template"]["spec"]["containers"]
    return container


def validate(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "stack.yaml"
    path.write_text(text)
    return subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "-k", "1.30.0", str(path)],
        capture_output=True, text=True, timeout=120,
    )


# --- Kubernetes -------------------------------------------------------------------------------


def test_every_document_validates_strictly(tmp_path: Path) -> None:
    text = render_kube(stack(), model_sources={"llamacpp": "hf://org/repo/qwen.gguf"}).text()
    result = validate(tmp_path, text)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("passed for resource") == len(docs_of(text))


def test_the_validator_rejects_an_unknown_field(tmp_path: Path) -> None:
    text = render_kube([llama()]).text().replace("imagePullPolicy:", "imagePullPolicyy:")
    assert validate(tmp_path, text).returncode != 0


def test_containers_are_exactly_the_specs() -> None:
    specs = stack()
    docs = docs_of(render_kube(specs).text())
    for spec in specs:
        container = container_of(docs, dns_label(spec.pod))
        assert container["image"] == spec.image
        assert container.get("args", []) == list(spec.command)
        assert [e["name"] for e in container["env"]] == list(spec.env)
        plain = {e["name"]: e["value"] for e in container["env"] if "value" in e}
        for name, value in spec.env.items():
            if name in spec.secret_env and value:
                assert name not in plain
            else:
                assert plain[name] == value
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert container["ports"][0] == {
            "containerPort": spec.ports[0].container_port, "hostPort": spec.ports[0].host_port,
            "hostIP": spec.ports[0].host_ip, "protocol": "TCP"}
        assert container["readinessProbe"]["httpGet"] == {
            "path": "/health", "port": spec.ports[0].container_port}


def test_secrets_only_in_secret_documents() -> None:
    result = render_kube(stack())
    text = result.text()
    assert KEY not in text and WEBUI_SECRET not in text
    docs = docs_of(text)
    secrets = by_kind(docs, "Secret")
    values = {base64.b64decode(v).decode() for d in secrets.values() for v in d["data"].values()}
    assert {KEY, f"{KEY};{KEY}", WEBUI_SECRET} <= values
    for d in docs:
        if d["kind"] != "Secret":
            encoded = base64.b64encode(KEY.encode()).decode()
            assert encoded not in json.dumps(d)
    # The env secret is read with secretKeyRef from a Secret that exists.
    gpu = container_of(docs, "airpods-llamacpp-gpu")
    [ref] = [e["valueFrom"]["secretKeyRef"] for e in gpu["env"] if e["name"] == "LLAMA_API_KEY"]
    assert base64.b64decode(secrets[ref["name"]]["data"][ref["key"]]).decode() == KEY
    # An empty secret value hides nothing: it stays a plain (empty) value.
    assert {"name": "OLLAMA_BASE_URL", "value": ""} in container_of(docs, "airpods-open-webui")[
        "env"]
    # Without the Secret documents (for Podman), nothing else changes.
    without = docs_of(result.text(secrets=False))
    assert [d for d in docs if d["kind"] != "Secret"] == without


def test_secret_file_is_a_secret_volume_at_its_directory() -> None:
    docs = docs_of(render_kube([llama()]).text())
    pod = by_kind(docs, "Deployment")["airpods-llamacpp"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["automountServiceAccountToken"] is False
    secret_name = "airpods-kube-llamacpp-llama-api-key"
    assert {"name": secret_name, "mountPath": "/run/secrets", "readOnly": True} in container[
        "volumeMounts"]
    assert {"name": secret_name, "secret": {"secretName": secret_name, "optional": False}} in pod[
        "volumes"]
    secret = by_kind(docs, "Secret")[secret_name]
    assert base64.b64decode(secret["data"]["llama-api-key"]).decode() == KEY
    assert "--api-key-file" in container["args"]


def test_podman_payloads_match_what_podman_4_3_reads() -> None:
    payloads = {s.name: s for s in render_kube(stack()).podman_secrets}
    env = payloads["airpods-kube-llamacpp-gpu-llama-api-key"]
    assert env.usage == "env"
    # secretKeyRef: a JSON map of base64 values (Go's map[string][]byte).
    assert base64.b64decode(json.loads(env.payload)["LLAMA_API_KEY"]).decode() == KEY
    file = payloads["airpods-kube-llamacpp-llama-api-key"]
    # A secret volume: the Secret's `data` written as is, so the raw value.
    assert file.usage == "file"
    assert json.loads(file.payload) == {"data": {"llama-api-key": KEY}}


def test_volumes_pvcs_and_dns_names() -> None:
    text = render_kube(stack()).text()
    docs = docs_of(text)
    pvcs = by_kind(docs, "PersistentVolumeClaim")
    assert sorted(pvcs) == ["airpods-llamacpp-models", "airpods-webui-data"]  # shared once
    assert "#   airpods_llamacpp_models -> airpods-llamacpp-models" in text
    container = container_of(docs, "airpods-llamacpp")
    assert {"name": "airpods-llamacpp-models", "mountPath": "/models", "readOnly": True} in (
        container["volumeMounts"])
    webui_ctr = container_of(docs, "airpods-open-webui")
    assert {"name": "airpods-webui-data", "mountPath": "/app/backend/data",
            "readOnly": False} in webui_ctr["volumeMounts"]
    assert dns_label("airpods_llamacpp_models") == "airpods-llamacpp-models"
    long = "A" * 80
    assert dns_label(long) == dns_label(long) and len(dns_label(long)) == 63
    assert dns_label("x" * 70) != dns_label("x" * 71)


def test_open_webui_reaches_llama_servers_by_service_name() -> None:
    specs = stack()
    docs = docs_of(render_kube(specs).text())
    services = by_kind(docs, "Service")
    urls = webui().env["OPENAI_API_BASE_URLS"].split(";")
    for url in urls:
        host, port = re.match(r"http://([^:/]+):(\d+)/", url).groups()
        assert host in services
        assert services[host]["spec"]["ports"][0]["port"] == int(port)
    # A Service per published port.
    assert {"llamacpp-gpu", "llamacpp-gpu-9090"} <= set(services)


def test_gpu_requests_and_limits() -> None:
    docs = docs_of(render_kube(stack()).text())
    assert container_of(docs, "airpods-llamacpp-gpu")["resources"] == {
        "limits": {"nvidia.com/gpu": 1, "memory": "16Gi", "cpu": "2500m"}}
    rocm = by_kind(docs, "Deployment")["airpods-llamacpp-rocm"]["spec"]["template"]["spec"]
    assert rocm["containers"][0]["resources"] == {"limits": {"amd.com/gpu": 1}}
    assert rocm["securityContext"] == {"supplementalGroups": [44, 109]}
    assert "resources" not in container_of(docs, "airpods-llamacpp")


def test_model_init_is_opt_in_and_downloads_into_the_volume() -> None:
    plain = docs_of(render_kube([llama()]).text())
    assert "initContainers" not in by_kind(plain, "Deployment")["airpods-llamacpp"]["spec"][
        "template"]["spec"]
    docs = docs_of(render_kube([llama()], model_sources={
        "llamacpp": "hf://Qwen/Qwen2.5-0.5B-Instruct-GGUF/qwen.gguf"}).text())
    pod = by_kind(docs, "Deployment")["airpods-llamacpp"]["spec"]["template"]["spec"]
    [init] = pod["initContainers"]
    env = {e["name"]: e["value"] for e in init["env"]}
    assert env == {"MODEL_URL": "https://huggingface.co/Qwen/Qwen2.5-0.5B-Instruct-GGUF/"
                                "resolve/main/qwen.gguf", "MODEL_PATH": "/models/qwen.gguf"}
    assert init["volumeMounts"] == [{"name": "airpods-llamacpp-models", "mountPath": "/models"}]
    assert ".partial" in init["command"][2] and "$(" not in init["command"][2]


def test_model_init_script_downloads_only_when_missing(tmp_path: Path) -> None:
    """The script itself, run by sh with a file:// stand-in for curl."""
    from airpods.export.model_init import MODEL_INIT_SCRIPT

    source = tmp_path / "src.gguf"
    source.write_bytes(b"GGUF" + b"\0" * 100)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "curl"
    fake.write_text('#!/bin/sh\nwhile [ "$1" != "-o" ]; do shift; done\ncp "$MODEL_SRC" "$2"\n')
    fake.chmod(0o755)
    target = tmp_path / "vol" / "sub" / "m.gguf"
    env = {"PATH": f"{bindir}:/usr/bin:/bin", "MODEL_URL": "http://x/m.gguf",
           "MODEL_PATH": str(target), "MODEL_SRC": str(source)}
    first = subprocess.run(["/bin/sh", "-c", MODEL_INIT_SCRIPT], env=env, capture_output=True,
                           text=True, timeout=30)
    assert first.returncode == 0, first.stderr
    assert target.read_bytes() == source.read_bytes()
    assert not list(target.parent.glob("*.partial"))
    second = subprocess.run(["/bin/sh", "-c", MODEL_INIT_SCRIPT], env={**env, "MODEL_SRC": "/x"},
                            capture_output=True, text=True, timeout=30)
    assert second.returncode == 0 and "model present" in second.stdout


@pytest.mark.parametrize("source", ["Qwen/Qwen2.5-0.5B-Instruct-GGUF:Q4_K_M", "hf://org/repo"])
def test_model_init_needs_a_file_reference(source: str) -> None:
    with pytest.raises(UsageError, match="names no file"):
        hf_url(source)


def test_a_key_in_argv_is_refused() -> None:
    spec = llama(command=("--model", "/models/q.gguf", "--api-key", KEY), secret_files=())
    with pytest.raises(UsageError, match="in clear"):
        render_kube([spec])
    with pytest.raises(UsageError, match="in clear"):
        render_quadlet([spec], network="airpods")


def test_two_names_mapping_to_one_label_are_refused() -> None:
    a = llama(mounts=(Mount("models_a", "/models", "ro"),))
    b = rocm_llama()
    b = replace(b, mounts=(Mount("models-a", "/models", "ro"),))
    with pytest.raises(UsageError, match="both map"):
        render_kube([a, b])


@pytest.mark.parametrize("value,expected", [("16g", "16Gi"), ("512m", "512Mi"), ("1024", "1Ki"),
                                            ("2GB", "2Gi")])
def test_memory_quantities(value: str, expected: str) -> None:
    assert quantity_memory(value) == expected


# --- quadlet ----------------------------------------------------------------------------------

# Keys per section from podman-systemd.unit(5), docs/source/markdown/podman-systemd.unit.5.md in
# github.com/containers/podman: the `### \`Key=\`` headings of each "units [Section]" chapter,
# at tag v4.7.0 (the default export's floor) and at v5.0.0 (`--pod`: .pod units arrived in 5.0).
def _keys(text: str) -> list[str]:
    return text.split()


QUADLET_KEYS_4_7 = {
    "Container": frozenset(_keys(
        "AddCapability AddDevice Annotation AutoUpdate ContainerName DNS DNSOption"
        " DNSSearch DropCapability Environment EnvironmentFile EnvironmentHost Exec"
        " ExposeHostPort Group HealthCmd HealthInterval HealthOnFailure HealthRetries"
        " HealthStartPeriod HealthStartupCmd HealthStartupInterval HealthStartupRetries"
        " HealthStartupSuccess HealthStartupTimeout HealthTimeout HostName IP IP6 Image"
        " Label LogDriver Mount Network NoNewPrivileges Notify PidsLimit PodmanArgs"
        " PublishPort Pull ReadOnly Rootfs RunInit SeccompProfile Secret"
        " SecurityLabelDisable SecurityLabelFileType SecurityLabelLevel"
        " SecurityLabelNested SecurityLabelType ShmSize Sysctl Timezone Tmpfs Ulimit"
        " User UserNS VolatileTmp Volume WorkingDir"
    )),
    "Network": frozenset(_keys(
        "DNS DisableDNS Driver Gateway IPAMDriver IPRange IPv6 Internal Label"
        " NetworkName Options PodmanArgs Subnet"
    )),
    "Volume": frozenset(_keys(
        "Copy Device Group Label Options PodmanArgs Type User VolumeName"
    )),
}
QUADLET_KEYS_5_0 = {
    "Container": frozenset(_keys(
        "AddCapability AddDevice Annotation AutoUpdate ContainerName"
        " ContainersConfModule DNS DNSOption DNSSearch DropCapability Entrypoint"
        " Environment EnvironmentFile EnvironmentHost Exec ExposeHostPort GIDMap"
        " GlobalArgs Group HealthCmd HealthInterval HealthOnFailure HealthRetries"
        " HealthStartPeriod HealthStartupCmd HealthStartupInterval HealthStartupRetries"
        " HealthStartupSuccess HealthStartupTimeout HealthTimeout HostName IP IP6 Image"
        " Label LogDriver Mask Mount Network NoNewPrivileges Notify PidsLimit Pod"
        " PodmanArgs PublishPort Pull ReadOnly ReadOnlyTmpfs Rootfs RunInit"
        " SeccompProfile Secret SecurityLabelDisable SecurityLabelFileType"
        " SecurityLabelLevel SecurityLabelNested SecurityLabelType ShmSize StopTimeout"
        " SubGIDMap SubUIDMap Sysctl Timezone Tmpfs UIDMap Ulimit Unmask User UserNS"
        " Volume WorkingDir"
    )),
    "Pod": frozenset(_keys(
        "ContainersConfModule GlobalArgs Network PodName PodmanArgs PublishPort Volume"
    )),
    "Network": frozenset(_keys(
        "ContainersConfModule DNS DisableDNS Driver Gateway GlobalArgs IPAMDriver"
        " IPRange IPv6 Internal Label NetworkName Options PodmanArgs Subnet"
    )),
    "Volume": frozenset(_keys(
        "ContainersConfModule Copy Device Driver GlobalArgs Group Image Label Options"
        " PodmanArgs Type User VolumeName"
    )),
}
# The plain systemd sections the units use (systemd.unit(5), systemd.service(5)).
SYSTEMD_KEYS = {
    "Unit": frozenset({"Description", "Requires", "After", "Wants"}),
    "Service": frozenset({"Restart", "TimeoutStartSec"}),
    "Install": frozenset({"WantedBy"}),
}
UNIT_SECTION = {".container": "Container", ".volume": "Volume", ".network": "Network",
                ".pod": "Pod"}


def parse_unit(text: str) -> list[tuple[str, str, str]]:
    """(section, key, value) in order; keys repeat, so no configparser."""
    out, section = [], None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            assert line.endswith("]"), raw
            section = line[1:-1]
            continue
        assert section is not None, raw
        key, sep, value = line.partition("=")
        assert sep, raw
        out.append((section, key, value))
    return out


def split_words(value: str) -> list[str]:
    """systemd's word splitting with unquoting and C escapes (quadlet's splitString with
    SplitRelax|SplitUnquote|SplitCUnescape), then the `%%`/`$$` systemd turns back into one."""
    words, i, n = [], 0, len(value)
    escapes = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'"}
    while i < n:
        while i < n and value[i].isspace():
            i += 1
        if i >= n:
            break
        word, quote = [], None
        while i < n and (quote or not value[i].isspace()):
            c = value[i]
            if quote and c == quote:
                quote = None
            elif not quote and c in "\"'":
                quote = c
            elif c == "\\" and i + 1 < n:
                i += 1
                if value[i] == "x":
                    word.append(chr(int(value[i + 1 : i + 3], 16)))
                    i += 2
                else:
                    word.append(escapes[value[i]])
            else:
                word.append(c)
            i += 1
        words.append("".join(word).replace("%%", "%").replace("$$", "$"))
    return words


def units_of(tmp_path: Path, pods: bool) -> dict[str, list[tuple[str, str, str]]]:
    result = render_quadlet(stack(), network="airpods", pods=pods)
    return {name: parse_unit(text) for name, text in result.units.items()}


@pytest.mark.parametrize("pods,keys", [(False, QUADLET_KEYS_4_7), (True, QUADLET_KEYS_5_0)])
def test_every_quadlet_key_is_documented(tmp_path: Path, pods: bool, keys: dict) -> None:
    units = units_of(tmp_path, pods)
    suffixes = {Path(name).suffix for name in units}
    assert suffixes == ({".container", ".volume", ".network", ".pod"} if pods
                        else {".container", ".volume", ".network"})
    for name, entries in units.items():
        main = UNIT_SECTION[Path(name).suffix]
        for section, key, _ in entries:
            allowed = keys[main] if section == main else SYSTEMD_KEYS[section]
            assert key in allowed, f"{name}: [{section}] {key}= is not in the documented keys"


def test_container_units_carry_the_spec(tmp_path: Path) -> None:
    result = render_quadlet(stack(), network="airpods")
    for spec in stack():
        entries = parse_unit(result.units[f"{spec.container}.container"])
        c = [(k, v) for s, k, v in entries if s == "Container"]

        def get(key: str, c: list[tuple[str, str]] = c) -> list[str]:
            return [v for k, v in c if k == key]

        exec_words = split_words(get("Exec")[0]) if get("Exec") else []
        assert exec_words == list(spec.command)
        assert get("Image") == [spec.image]
        assert get("DropCapability") == ["ALL"] and get("NoNewPrivileges") == ["true"]
        assert get("PublishPort")[0] == (
            f"{spec.ports[0].host_ip}:{spec.ports[0].host_port}:{spec.ports[0].container_port}")
        env = dict(w.split("=", 1) for v in get("Environment") for w in split_words(v))
        assert env == {k: v for k, v in spec.env.items()
                       if not (k in spec.secret_env and v)}
        for mount in spec.mounts:
            assert f"{mount.source}.volume:{mount.target}:{mount.mode}" in get("Volume")
        assert f"--network-alias {spec.network_aliases[0]}" in get("PodmanArgs")


def test_quadlet_secrets_are_podman_secrets(tmp_path: Path) -> None:
    result = render_quadlet(stack(), network="airpods")
    text = "".join(result.units.values())
    assert KEY not in text and WEBUI_SECRET not in text
    llama_unit = result.units["airpods-llamacpp-server.container"]
    assert ("Secret=airpods-llamacpp-llama-api-key,type=mount,target=/run/secrets/llama-api-key"
            in llama_unit.splitlines())
    gpu_unit = result.units["airpods-llamacpp-gpu-s.container"]
    assert ("Secret=airpods-llamacpp-gpu-llama-api-key,type=env,target=LLAMA_API_KEY"
            in gpu_unit.splitlines())
    values = {s.name: s.value for s in result.secrets}
    assert values["airpods-llamacpp-llama-api-key"] == KEY
    assert values["airpods-open-webui-webui-secret-key"] == WEBUI_SECRET


def test_quadlet_gpu_and_dependencies(tmp_path: Path) -> None:
    result = render_quadlet(stack(), network="airpods")
    gpu = result.units["airpods-llamacpp-gpu-s.container"].splitlines()
    assert "AddDevice=nvidia.com/gpu=all" in gpu
    assert "PodmanArgs=--memory 16g" in gpu and "PodmanArgs=--cpus 2.5" in gpu
    rocm = result.units["rocm.container"].splitlines()
    assert {"AddDevice=/dev/kfd", "AddDevice=/dev/dri", "PodmanArgs=--group-add 44",
            "PodmanArgs=--group-add 109"} <= set(rocm)
    ui = result.units["airpods-open-webui-server.container"].splitlines()
    assert "Requires=airpods-llamacpp-server.service" in ui
    assert "AddCapability=CHOWN SETUID" in ui
    pods = render_quadlet(stack(), network="airpods", pods=True).units
    pod = pods["airpods-llamacpp.pod"].splitlines()
    assert "PublishPort=127.0.0.1:8080:8080" in pod and "Network=airpods.network" in pod
    assert "Pod=airpods-llamacpp.pod" in pods["airpods-llamacpp-server.container"].splitlines()


def test_quadlet_generator_dry_run(tmp_path: Path) -> None:
    """Run the real generator where one exists; Podman 4.3.1 has none (quadlet came in 4.4)."""
    candidates = [shutil.which("quadlet"), "/usr/libexec/podman/quadlet",
                  "/usr/lib/podman/quadlet"]
    binary = next((c for c in candidates if c and Path(c).exists()), None)
    if binary is None:
        version = subprocess.run(["podman", "--version"], capture_output=True, text=True)
        found = re.search(r"(\d+)\.(\d+)", version.stdout)
        assert found and tuple(map(int, found.groups())) < (4, 4), (
            "a Podman with quadlet support but no quadlet binary found")
        return
    unit_dir = tmp_path / "units"
    unit_dir.mkdir()
    for name, text in render_quadlet(stack(), network="airpods").units.items():
        (unit_dir / name).write_text(text)
    run = subprocess.run([binary, "-dryrun", "-user"], env={"QUADLET_UNIT_DIRS": str(unit_dir)},
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "airpods-llamacpp-server.service" in run.stdout


# --- where exports are written ------------------------------------------------------------------


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**{k: v for k, v in os.environ.items() if k != "HF_ENDPOINT"},
           "XDG_CONFIG_HOME": str(tmp_path / "c"),
           "XDG_DATA_HOME": str(tmp_path / "d"), "XDG_CACHE_HOME": str(tmp_path / "k"),
           "AIRPODS_ACCELERATOR": "cpu"}
    return subprocess.run([sys.executable, "-m", "airpods", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def _special(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / kind
    if kind == "fifo":
        os.mkfifo(path)
    else:  # a copy of /dev/full: never the real one
        os.mknod(path, 0o644 | stat.S_IFCHR, os.makedev(1, 7))
    return path


@pytest.mark.parametrize("kind", [
    "fifo",
    pytest.param("device", marks=pytest.mark.skipif(
        os.geteuid() != 0, reason="mknod of a device needs root")),
])
def test_export_never_replaces_a_special_file(tmp_path: Path, kind: str) -> None:
    path = _special(tmp_path, kind)
    before = path.lstat()
    for args in (("export", "kube", "-o", str(path)), ("export", "quadlet", "--output", str(path))):
        result = _cli(tmp_path, *args)
        assert result.returncode == 2, result.stderr
        [line] = result.stderr.strip().splitlines()
        assert line.startswith(f"airpods: {path} is "), line
        after = path.lstat()
        assert (after.st_mode, after.st_rdev, after.st_ino) == (
            before.st_mode, before.st_rdev, before.st_ino)
    assert not (tmp_path / "d").exists()  # refused before any secret was generated


def test_cleanup_days_must_be_a_number(tmp_path: Path) -> None:
    for value in ("nan", "inf", "-1"):
        result = _cli(tmp_path, "models", "cleanup", "--days", value)
        assert result.returncode == 2 and "--days" in result.stderr, result.stderr


def test_model_init_through_the_cli(tmp_path: Path) -> None:
    """`export kube --model-init` reads the service's model_source from the config."""
    user = tmp_path / "user.toml"
    user.write_text('[services.llamacpp]\ndefault_model = "m.gguf"\n'
                    'model_source = "hf://org/repo/m.gguf"\n')
    result = _cli(tmp_path, "--config", str(user), "export", "kube", "llamacpp", "--model-init")
    assert result.returncode == 0, result.stderr
    pod = by_kind(docs_of(result.stdout), "Deployment")["airpods-llamacpp"]["spec"]["template"]
    [init] = pod["spec"]["initContainers"]
    env = {e["name"]: e["value"] for e in init["env"]}
    assert env == {"MODEL_URL": "https://huggingface.co/org/repo/resolve/main/m.gguf",
                   "MODEL_PATH": "/models/m.gguf"}
    # The built-in model_source = "auto" is the tier's file (config/models.toml).
    auto = _cli(tmp_path, "export", "kube", "llamacpp", "--model-init")
    assert auto.returncode == 0, auto.stderr
    assert "https://huggingface.co/Qwen/" in auto.stdout
    # A source that names a quant, not a file: one line, nothing written.
    user.write_text('[services.llamacpp]\ndefault_model = "m.gguf"\n'
                    'model_source = "org/repo:Q4_K_M"\n')
    plain = _cli(tmp_path, "--config", str(user), "export", "kube", "llamacpp", "--model-init")
    assert plain.returncode == 2 and plain.stdout == ""
    [line] = plain.stderr.strip().splitlines()
    assert "names no file" in line, line


def test_kube_and_start_secrets_have_distinct_names(tmp_path: Path) -> None:
    """`start` and the quadlets hold the bare key under one name; `kube play` needs JSON: on one
    host's Podman, neither may replace the other's secret."""
    specs = stack()
    kube = {s.name for s in render_kube(specs).podman_secrets}
    quadlet = {s.name for s in render_quadlet(specs, network="airpods").secrets}
    started = {f.name for spec in specs for f in (*spec.secret_files, *spec.config_files)}
    assert kube and quadlet and started <= quadlet
    assert not kube & quadlet
    assert all(name.startswith("airpods-kube-") for name in kube)
