"""What plugins declare: their manifest and the agent configs they register."""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class PluginManifest(BaseModel):
    """Who a plugin is: a stable id and the version of its code."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    plugin_id: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.\-]+$")
    version: str = Field(min_length=1, max_length=100)
    description: str = ""


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """The tools, prompts, skills, callbacks and sub-agents of one agent, as a plugin built it.

    ``tools`` and ``callbacks`` map names to callables (the plugin's code); ``prompts`` map names
    to text; ``skills`` is JSON data; ``sub_agents`` names agent types it may call.
    ``missing_tools`` is set only on a config recovered from a snapshot whose code is gone.
    """

    agent_id: str
    tools: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    prompts: Mapping[str, str] = field(default_factory=dict)
    skills: Any = field(default_factory=list)
    callbacks: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    sub_agents: Sequence[str] = field(default_factory=list)
    missing_tools: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.agent_id, str) or not self.agent_id.strip():
            raise ValueError(
                f"AgentConfig.agent_id must be a non-empty string, not {self.agent_id!r}"
            )
        for kind in ("tools", "callbacks"):
            for name, value in getattr(self, kind).items():
                if not isinstance(name, str) or not callable(value):
                    raise TypeError(
                        f"AgentConfig {self.agent_id!r}: {kind} maps names to callables; "
                        f"{name!r} is {type(value).__name__}"
                    )
        for name, text in self.prompts.items():
            if not isinstance(name, str) or not isinstance(text, str):
                raise TypeError(f"AgentConfig {self.agent_id!r}: prompt {name!r} must be a str")
        if isinstance(self.sub_agents, str) or not all(isinstance(a, str) for a in self.sub_agents):
            raise TypeError(
                f"AgentConfig {self.agent_id!r}: sub_agents is a list of agent type names"
            )


@dataclass(frozen=True, slots=True)
class PluginBuildContext:
    """What a plugin knows while it builds its configs."""

    worker_id: str
    agent_types: tuple[str, ...]
    reason: str
    """"startup", or "reload: <the reload's reason>"."""
