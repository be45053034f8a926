"""The migrations form one chain: two helpers adding a revision after the same parent
give Alembic two heads, and every server then refuses to start ("Multiple head
revisions"). Caught here, in a second, rather than by every live-server test."""

from __future__ import annotations

from alembic.config import Config
from alembic.script import ScriptDirectory

from tests.helpers import REPO


def test_one_head_and_numbered_in_order() -> None:
    config = Config(str(REPO / "alembic.ini"))
    config.set_main_option("script_location", str(REPO / "app" / "index" / "migrations"))
    scripts = ScriptDirectory.from_config(config)
    assert len(scripts.get_heads()) == 1, scripts.get_heads()
    chain = [r.revision for r in scripts.walk_revisions()][::-1]
    numbers = [int(revision.split("_", 1)[0]) for revision in chain]
    assert numbers == sorted(set(numbers)), chain  # no two revisions share a number
