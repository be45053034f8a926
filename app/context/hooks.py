"""What the services ask of the site's scripts (Lua, Python hooks), below both.

The one ingest path and the C-FIND SCU call these on ``context.hooks``; by default they
do nothing. When scripting starts, :mod:`app.scripting.engine` installs its own
(:class:`app.scripting.events.ScriptingHooks`), and removes it when it stops: the services
never import the scripting door.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

    from app.context import ServerContext
    from app.dicom.parse import ParsedInstance


class ScriptHooks:
    """No scripts: every instance is accepted, nothing is signalled, queries go as built."""

    def filter_incoming_instance(self, context: ServerContext, data: bytes,
                                 parsed: ParsedInstance, origin: Mapping[str, str]) -> int | None:
        """None to store the instance; else the DIMSE status of the refusal
        (``ReceivedInstanceFilter``, ``ReceivedCStoreInstanceFilter``)."""
        return None

    def instance_stored(self, context: ServerContext, data: bytes, parsed: ParsedInstance,
                        origin: Mapping[str, str]) -> None:
        """After the ingest transaction committed (``OnStoredInstance``). Never raises."""

    def outgoing_find_identifier(self, context: ServerContext, identifier: Dataset,
                                 remote_aet: str) -> Dataset:
        """The identifier sent to a remote C-FIND SCP (``OutgoingFindRequestFilter``)."""
        return identifier


NO_HOOKS = ScriptHooks()
