"""What every layer shares: errors, models, settings, input rules, keys, metrics, logs, the client's address. Imports nothing else of the package."""
