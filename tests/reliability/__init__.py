"""Reliability and security proof of the gateway: faults, contract, soak, shutdown, secrets (`make reliability`)."""
