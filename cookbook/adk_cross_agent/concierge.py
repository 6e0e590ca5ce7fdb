"""A Google ADK agent whose tools are the other two agents, wherever they run."""

from by_framework_adk import adk_worker, remote_agent_tool
from google.adk.agents import LlmAgent
from offline_model import OfflineModel

concierge = LlmAgent(
    name="concierge",
    model=OfflineModel(),  # or "gemini-2.5-flash"
    instruction="Ask the summarizer and the shouter about the user's message, then report.",
    tools=[
        remote_agent_tool("summarizer", "Sum up a text."),
        remote_agent_tool("shout", "Shout a text."),
    ],
)

ConciergeWorker = adk_worker(concierge, "concierge")
