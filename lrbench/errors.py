"""Bad user input: the CLI turns these into a one-line message and exit code 2."""


class ConfigError(ValueError):
    """The message names the key, the bad value and what is allowed."""

    def __init__(self, key: str, value: object, allowed: str):
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}={value}: {allowed}")


class ArgumentError(ValueError):
    """A command-line argument that is not key=value (an unknown ``--flag``): the message
    names it as typed and says what to write instead."""


class BadInputExit(SystemExit):
    """Carries a ConfigError out of a Hydra job, whose runner reports (on stderr, with the
    job's overrides) and swallows every ``Exception`` but lets ``SystemExit`` through."""

    def __init__(self, error: Exception):
        super().__init__(2)
        self.error = error
