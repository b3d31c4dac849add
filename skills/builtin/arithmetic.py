"""Built-in skill: spoken arithmetic."""

from skills import skill
from skills.spoken import evaluate, say_number


@skill
def math(question: str) -> str:
    """Work out spoken arithmetic: plus, minus, times, divided by, percent of, percent off, squared, square root,
    powers."""
    return f"{question.strip().rstrip('?.!')} is {say_number(evaluate(question))}"
