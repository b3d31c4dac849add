"""Built-in skill: the "nothing to do" call."""

from skills import skill


@skill
def other() -> None:
    """The user is not asking for any skill: background speech, thanks, noise."""
    return
