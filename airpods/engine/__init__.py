"""Engine: turns ContainerSpecs into running Podman pods and waits until each service is ready."""
