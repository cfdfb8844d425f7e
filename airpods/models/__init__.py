"""The model store: GGUF files in services' model volumes (store, pull, transfer), which service
serves which (services), the first-use download, usage records and the header cache. The hub
client it downloads with is airpods.hub; the fit estimate and GGUF headers are airpods.fit and
airpods.gguf_meta, the catalogue of tiers is airpods.config.tiers.
"""
