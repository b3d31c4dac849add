"""Built-in skill: spoken arithmetic."""

from skills import printable, skill
from skills.spoken import evaluate, say_number


@skill
def math(question: str) -> str:
    """Work out spoken arithmetic: plus, minus, times, divided by, percent of, percent off, squared, square root,
    powers."""
    return f"{printable(question.strip().rstrip('?.!'))} is {say_number(evaluate(question))}"
