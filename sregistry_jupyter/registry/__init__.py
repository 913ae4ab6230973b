"""The Tornado registry server: data model, storage, access policy, services and protocol adapters."""
