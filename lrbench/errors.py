"""The one error type the CLI turns into a one-line message and exit code 2."""


class ConfigError(ValueError):
    """Bad user input: the message names the key, the bad value and what is allowed."""

    def __init__(self, key: str, value: object, allowed: str):
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}={value!r}: {allowed}")
