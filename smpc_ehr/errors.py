"""The exceptions every layer raises, so callers can tell bad input from failures.

Each message names what is wrong (a file, a row, a parameter, a party) because the
people who read them (a hospital's IT staff, an analyst) cannot read our code.
"""


class SmpcEhrError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(SmpcEhrError):
    """A roster, party config or certificate setup is invalid or inconsistent."""


class DataError(SmpcEhrError):
    """A party's data files are malformed; the message names file, row and column."""


class JointRefusal(DataError):
    """The joint data, judged inside MPC, do not allow the analysis (a group below the
    small-cell threshold). Every party raises the same one, so it is reported without
    naming a party: naming one would tell which hospital holds few patients."""


class TemplateError(SmpcEhrError):
    """A study protocol template or its parameter values are invalid."""


class Refusal(SmpcEhrError):
    """A party (or the coordinator) declines to run a job; the reason is for the analyst."""


class BadRequest(Refusal):
    """A request that cannot be served as asked (sizes, kinds, arguments): the caller's bug."""


class TransportError(SmpcEhrError):
    """A peer could not be reached, sent something invalid, or a deadline passed."""


class JobAborted(SmpcEhrError):
    """A job was stopped on this party because it failed here or elsewhere."""
