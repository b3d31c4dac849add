from skills import SkillContext, SkillFailed, skill


@skill
def greet(name: str, context: SkillContext, times: int = 1) -> str:
    """Greet someone by name."""
    if not name.strip():
        raise SkillFailed("Whom should I greet?")
    return " ".join([f"Hello {name}!"] * times)
