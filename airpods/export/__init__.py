"""Exports of the stack `start` runs: Kubernetes YAML (`kube`) and systemd quadlets (`quadlet`).

Both render from the ContainerSpecs `start` uses (airpods.resolved): argv, env, image, ports,
mounts and security settings are taken from the spec, never derived again from the config.
"""
