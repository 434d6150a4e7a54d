"""Errors the simulator raises. All are FlexiQError subclasses, so the CLI prints them cleanly.

Each message names what was wrong and where (field, instruction index, buffer, queue).
"""

from __future__ import annotations

from numeric.errors import ConfigError, FlexiQError, RatioError

__all__ = [
    "ConfigError",
    "SimError",
    "ISAError",
    "SRAMOverflowError",
    "DRAMAddressError",
    "DeadlockError",
    "ProgramError",
    "ProgramFileError",
    "ProgramRatioError",
]


class SimError(FlexiQError):
    """Base class of simulator errors."""


class ISAError(SimError):
    """An instruction is malformed: bad opcode, bad field value, or it cannot be decoded."""


class SRAMOverflowError(SimError):
    """An instruction touches addresses outside an on-chip buffer (names the buffer)."""


class DRAMAddressError(SimError):
    """A DMA touches DRAM outside every region of the program's DRAM image."""


class DeadlockError(SimError):
    """The queues wait on tokens that will never arrive (names the blocked queues)."""


class ProgramError(SimError):
    """A program is inconsistent (missing region, missing ratio table, bad inputs)."""


class ProgramFileError(ProgramError):
    """A program file is unreadable, damaged (checksum) or structurally inconsistent."""


class ProgramRatioError(ProgramError, RatioError):
    """A ratio the program has no max4 table for (the message lists the ones it has)."""
