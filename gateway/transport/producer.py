"""A request body streamed from a spooled or stored file (a large AS4 message).

Twisted's ``FileBodyProducer`` reads from the file's position and closes it when done; a
``FileContent`` is a byte range read with ``pread`` and may be shared (the same stored
message for every attempt), so it gets its own small producer: chunks are written one per
cooperator turn, and the HTTP client's flow control pauses and resumes the task.
"""
from __future__ import annotations

from twisted.internet import task
from twisted.web.iweb import IBodyProducer
from zope.interface import implementer

from crypto.content import FileContent

#: Per write: what the TLS transport takes without queueing much more behind it.
CHUNK = 64 * 1024


@implementer(IBodyProducer)
class ContentProducer:
    def __init__(self, data: FileContent, cooperator: task.Cooperator | None = None):
        self.data = data
        self.length = data.length
        self._cooperate = (cooperator or task).cooperate
        self._task: task.CooperativeTask | None = None

    def startProducing(self, consumer):
        self._task = self._cooperate(self._write(consumer))
        d = self._task.whenDone()
        d.addCallback(lambda _: None)
        return d

    def _write(self, consumer):
        for piece in self.data.chunks(CHUNK):
            consumer.write(piece)
            yield None

    def pauseProducing(self) -> None:
        self._task.pause()

    def resumeProducing(self) -> None:
        self._task.resume()

    def stopProducing(self) -> None:
        try:
            self._task.stop()
        except task.TaskFinished:
            pass
