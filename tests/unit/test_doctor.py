"""`airpods doctor`: the pure checks over gathered facts (no Podman here; the real run is in
tests/integration/test_doctor.py)."""

from __future__ import annotations

from airpods.cli import doctor as d
from airpods.host import GpuInfo, HostFacts


def info(version: str = "5.0.0", rootless: bool = True, cgroup: str = "v2",
         runtime: str = "crun") -> dict:
    return {"version": {"Version": version},
            "host": {"security": {"rootless": rootless}, "cgroupVersion": cgroup,
                     "ociRuntime": {"name": runtime, "version": f"{runtime} 1.2\nmore"}}}


def test_podman_version_and_mode() -> None:
    assert d.check_podman(info("5.0.0")) == d.Check("podman", "ok", "podman 5.0.0, rootless")
    old = d.check_podman(info("4.3.1", rootless=False))
    assert (old.status, old.found) == ("warn", "podman 4.3.1, rootful") and "4.7" in old.fix
    assert d.check_podman(info("3.4.4")).status == "fail"


def test_cgroups_and_runtime() -> None:
    ok = d.check_runtime(info())
    assert ok.status == "ok" and ok.found == "cgroups v2, OCI runtime crun (crun 1.2)"
    assert d.check_runtime(info(cgroup="v1", rootless=True)).status == "warn"
    hybrid = d.check_runtime(info(cgroup="v1", rootless=False, runtime="crun"))
    assert hybrid.status == "warn" and "runc" in hybrid.fix
    assert d.check_runtime(info(cgroup="v1", rootless=False, runtime="runc")).status == "ok"


def test_ulimits() -> None:
    low = d.check_ulimits(1024, 20000, None)
    assert low.status == "warn" and "nofile=20000:20000" in low.fix
    assert d.check_ulimits(1024, 20000, "/etc/my.conf").status == "ok"
    assert d.check_ulimits(1024, 1 << 20, None).status == "ok"


def host(accelerator: str, gpu: GpuInfo | None) -> HostFacts:
    return HostFacts(accelerator=accelerator, reason="r", physical_cores=2, logical_cores=4,
                     gpu=gpu)


def test_gpu() -> None:
    assert d.check_gpu(host("cpu", None)).status == "ok"
    usable = GpuInfo("nvidia", "RTX", ("nvidia.com/gpu=all",))
    assert d.check_gpu(host("cuda", usable)).status == "ok"
    no_cdi = GpuInfo("nvidia", "RTX", usable=False, problem="no CDI spec. Fix: sudo nvidia-ctk")
    auto = d.check_gpu(host("cpu", no_cdi))
    assert auto.status == "warn" and "nvidia-ctk" in auto.fix  # runs on the CPU
    assert d.check_gpu(host("cuda", no_cdi)).status == "fail"  # forced: start would not work


def test_rocm_groups() -> None:
    gids = {"video": 44, "render": 109}
    assert d.check_rocm_groups(False, 1000, [], gids).status == "ok"
    assert d.check_rocm_groups(True, 0, [], gids).status == "ok"
    missing = d.check_rocm_groups(True, 1000, [44], gids)
    assert missing.status == "warn" and "usermod -aG render" in missing.fix
    assert d.check_rocm_groups(True, 1000, [44, 109], gids).status == "ok"


def test_selinux() -> None:
    assert "not present" in d.check_selinux(False, False).found
    assert ":z" in d.check_selinux(True, True).found


def test_disk_thresholds() -> None:
    gib = 2**30
    [ok] = d.check_disk({"volumes": ("/v", 50 * gib)}, 0)
    assert ok.status == "ok" and ok.found == "50.0 GiB free at /v"
    [warn] = d.check_disk({"volumes": ("/v", 5 * gib)}, 0)
    assert warn.status == "warn"
    [fail] = d.check_disk({"volumes": ("/v", gib // 2)}, 0)
    assert fail.status == "fail"
    [short] = d.check_disk({"volumes": ("/v", 8 * gib)}, 9 * gib)
    assert short.status == "fail" and "9.0 GiB of models" in short.fix


def test_ports() -> None:
    wanted = {("127.0.0.1", 8080): "llamacpp", ("127.0.0.1", 3000): "open-webui",
              ("127.0.0.1", 8081): "llamacpp-ui"}
    busy = {("127.0.0.1", 8080), ("127.0.0.1", 3000), ("127.0.0.1", 8081)}
    checks = d.check_ports(
        wanted, lambda ip, port: (ip, port) not in busy,
        holders={("0.0.0.0", 3000): "someone-else"},
        ours={("127.0.0.1", 8080): "llamacpp"},
    )
    by_name = {c.name: c for c in checks}
    assert by_name["port 127.0.0.1:8080 (llamacpp)"].found == "held by airpods service llamacpp"
    webui = by_name["port 127.0.0.1:3000 (open-webui)"]
    assert (webui.status, webui.found) == ("fail", "in use by container someone-else")
    assert "services.open-webui.ports" in webui.fix
    assert by_name["port 127.0.0.1:8081 (llamacpp-ui)"].found == "in use by another program"


def test_real_port_probe() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert d._port_free("127.0.0.1", port) is False
    assert d._port_free("127.0.0.1", port) is True


# --- a gateway's remotes --------------------------------------------------------------------


def test_remote_key_variable_and_host() -> None:
    from airpods.cli.doctor_remotes import Remote, check_remote

    remote = Remote("gateway", "homelab", "http://box.lan:11434/v1", "HOMELAB_KEY")
    yes, no = (lambda host: True), (lambda host: False)
    unset = check_remote(remote, {}, yes)
    assert (unset.name, unset.status) == ("remote homelab (gateway)", "fail")
    assert "HOMELAB_KEY is not set" in unset.found and "export HOMELAB_KEY" in unset.fix
    assert check_remote(remote, {"HOMELAB_KEY": ""}, yes).status == "fail"  # empty is unset
    ok = check_remote(remote, {"HOMELAB_KEY": "k"}, yes)
    assert ok.status == "ok" and ok.found == "HOMELAB_KEY set; box.lan resolves"
    assert "k" not in ok.found.replace("box.lan", "")  # never the key itself
    lost = check_remote(remote, {"HOMELAB_KEY": "k"}, no)
    assert lost.status == "warn" and "box.lan does not resolve" in lost.found
    assert "remotes.homelab.base_url" in lost.fix
    keyless = check_remote(Remote("gateway", "lan", "http://10.0.0.2:8080/v1", None), {}, yes)
    assert (keyless.status, keyless.found) == ("ok", "no key; 10.0.0.2 resolves")


def test_the_real_resolver_offline() -> None:
    """Loopback names resolve from /etc/hosts and IP literals need no lookup; a name under
    .invalid (RFC 6761) never resolves, and a resolver that cannot answer is cut off."""
    import time

    from airpods.cli.doctor_remotes import host_resolves

    assert host_resolves("127.0.0.1") and host_resolves("::1") and host_resolves("localhost")
    started = time.monotonic()
    assert not host_resolves("no-such-host.invalid", timeout=2.0)
    assert time.monotonic() - started < 2.5
    assert not host_resolves("bad..name", timeout=2.0)


def test_remotes_come_from_enabled_gateways_only(tmp_path) -> None:
    from airpods.cli.doctor_remotes import Remote, configured_remotes
    from airpods.config.loader import load_config_text
    from airpods.secrets import SecretStore

    text = ('[services.gateway]\nenabled = true\n[services.gateway.remotes.homelab]\n'
            'base_url = "http://box.lan:11434/v1"\napi_key_env = "HOMELAB_KEY"\n'
            'models = ["llama3.1:8b"]\n')
    host = HostFacts(accelerator="cpu", reason="test", physical_cores=1, logical_cores=1)
    loaded = load_config_text(tmp_path / "c.toml", text, host=host, environ={},
                              secrets=SecretStore(tmp_path / "s"))
    assert configured_remotes(loaded.config, ["llamacpp", "gateway"]) == [
        Remote("gateway", "homelab", "http://box.lan:11434/v1", "HOMELAB_KEY")]
    assert configured_remotes(loaded.config, ["llamacpp"]) == []  # gateway not enabled
