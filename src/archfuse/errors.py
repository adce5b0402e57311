"""The one error type users see for bad input: it names the key or path and what to do."""


class ConfigError(ValueError):
    """Bad input caught before any expensive work; printed without a traceback."""

    def __init__(self, key: str, message: str):
        self.key = key
        super().__init__(f"{key}: {message}" if key else message)
