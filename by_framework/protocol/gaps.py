"""EventGap: where a reader of a session missed events that Redis trimmed before it read them."""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class EventGap:
    """Events of the session that the stream's cap (``data_stream_maxlen``) trimmed before this
    reader read them; ``GatewayClient.events`` yields it in their place.

    ``after`` is the stream id the reader had read up to ("0-0": the start) and ``before`` the id
    of the first entry past the gap. ``trimmed`` counts the events lost, or is None where Redis
    cannot count them (a reader resuming from past the stream's start: Redis keeps no count of
    the entries after a given id). ``message_ids`` names their task where its sequence numbers
    told (a run's seq jumped); it is empty where whole tasks' events may be gone.
    """

    session_id: str
    after: str
    before: str
    trimmed: int | None
    message_ids: tuple[str, ...] = ()

    def describe(self) -> str:
        count = "some" if self.trimmed is None else str(self.trimmed)
        tasks = f" of task {', '.join(self.message_ids)}" if self.message_ids else ""
        return (
            f"{count} events{tasks} of session {self.session_id!r} were trimmed between stream "
            f"ids {self.after} and {self.before} before this reader read them"
        )
