"""airpods: a local AI stack on Podman, with llama.cpp's llama-server at its heart."""

__version__ = "0.1.0"
