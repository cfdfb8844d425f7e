"""The hub client (Hugging Face, or a mirror: HF_ENDPOINT): model references, the hub's JSON
API, HEADs and streamed GETs on airpods' own HTTP/1.1 client, retries and the reachability check.
It knows no config, no service and no volume: the model store (airpods.models) builds on it.
"""
