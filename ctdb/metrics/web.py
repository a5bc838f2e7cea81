# -*- test-case-name: tests.metrics.test_web -*-
"""
The metrics endpoint of a node: C{/metrics} in Prometheus' text format,
served by twisted.web on a Twisted server endpoint string (such as
C{tcp:9100:interface=127.0.0.1}) as the node's service C{"metrics"}.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.registry import CollectorRegistry
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.python.failure import Failure
from twisted.web.pages import notFound
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from ctdb.errors import ConfigError
from ctdb.interfaces import ICTDBReactor
from ctdb.transports.listening import ListeningService


def parseEndpoint(reactor: object, description: str) -> IStreamServerEndpoint:
    """The server endpoint C{description} names, or L{ConfigError} saying
    why it names none."""
    try:
        endpoint: IStreamServerEndpoint = serverFromString(reactor, description)
    except (ValueError, TypeError, KeyError) as e:
        raise ConfigError(
            f"bad metrics endpoint {description!r} (want a Twisted endpoint"
            f" string such as tcp:9100:interface=127.0.0.1): {e}"
        ) from None
    return endpoint


def checkEndpoint(description: str) -> None:
    """Raise L{ConfigError} if C{description} is no server endpoint string
    (nothing is listened on)."""
    parseEndpoint(object(), description)


class MetricsResource(Resource):
    """C{/metrics}: the registry in Prometheus' text format, labelled
    version 0.0.4 (the classic format every Prometheus reads; all our names
    are plain ones, so the output is the same in 1.0.0)."""

    isLeaf = True

    def __init__(self, registry: CollectorRegistry) -> None:
        super().__init__()
        self.registry = registry

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"Content-Type", CONTENT_TYPE_PLAIN_0_0_4.encode("ascii"))
        return generate_latest(self.registry)


class _Root(Resource):
    """C{/}: a pointer to C{/metrics}; anything else is not found."""

    def getChild(self, path: bytes, request: Request) -> Resource:
        if path == b"":
            return self
        return notFound()  # type: ignore[return-value]

    def render_GET(self, request: Request) -> bytes:
        request.setHeader(b"Content-Type", b"text/plain; charset=utf-8")
        return b"txctdb node metrics: see /metrics\n"


def metricsSite(registry: CollectorRegistry) -> Site:
    """The web site of a node's metrics endpoint."""
    root = _Root()
    root.putChild(b"metrics", MetricsResource(registry))
    return Site(root)


class MetricsService(ListeningService):
    """
    Listens on the endpoint while the node runs.  An endpoint that cannot
    be listened on (address in use, port out of range) fails the node's
    start at once with a L{ConfigError} naming it, as the client socket
    does.
    """

    name = "metrics"  # type: ignore[assignment]

    def __init__(
        self, *, reactor: ICTDBReactor, description: str, registry: CollectorRegistry
    ) -> None:
        super().__init__(parseEndpoint(reactor, description), metricsSite(registry))
        self.description = description
        self.registry = registry

    def listenFailed(self, failure: Failure) -> None:
        raise ConfigError(
            f"cannot listen on metrics endpoint {self.description!r}:"
            f" {failure.getErrorMessage()}"
        )
