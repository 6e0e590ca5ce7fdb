"""The graph you already have: a LangChain agent with two tools, one of which asks a human before
it books. Nothing here knows about by-framework."""

from langchain.agents import create_agent
from langgraph.types import interrupt
from offline_model import OfflineModel

WEATHER = {"oslo": "sunny, 21°C", "bergen": "rainy, 14°C"}


def lookup_weather(city: str) -> str:
    """The weekend's weather in a city."""
    return WEATHER.get(city.lower(), "a mystery")


def book_trip(city: str) -> str:
    """Book a weekend in a city; the user must say yes first."""
    answer = interrupt({"prompt": f"Book a weekend in {city}?", "options": ["yes", "no"]})
    return f"booked for you ({answer})" if answer == "yes" else f"not booked ({answer})"


graph = create_agent(
    OfflineModel(),  # your ChatOpenAI(...) here
    tools=[lookup_weather, book_trip],
    system_prompt="You plan weekend trips.",
)
