"""The registry's rules, once: registration and ownership, discovery, health and trust, limits, import. Imports core, store and probe."""
