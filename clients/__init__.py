"""Clients of the sqlgate gateway: the `sqlgate` CLI (`ask`, `eval`, `bench`) and SDK examples.

They speak only HTTP and the openai SDK to the gateway and share no code with `gateway/`.
"""
