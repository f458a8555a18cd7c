"""Prometheus metrics, one registry per application."""

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE  # noqa: F401 - re-exported
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from app.events.broker import Broker
from app.models.enums import EventKind

disable_created_metrics()  # the *_created series only add noise to every scrape

ROUTES = frozenset({"/graphql", "/healthz", "/readyz", "/metrics"})


class Metrics:
    def __init__(self, broker: Broker) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "binocular_http_requests",
            "HTTP requests and WebSocket connections, by route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "binocular_http_request_duration_seconds",
            "Time to answer an HTTP request, by route.",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        subscriptions = Gauge(
            "binocular_active_subscriptions",
            "Subscriptions to the event log open on this process.",
            registry=self.registry,
        )
        subscriptions.set_function(lambda: broker.subscriber_count)
        self.sessions_started = Counter(
            "binocular_monitoring_sessions_started",
            "Monitoring sessions started by this process.",
            registry=self.registry,
        )
        self.sessions_ended = Counter(
            "binocular_monitoring_sessions_ended",
            "Monitoring sessions ended by this process, by reason.",
            ["reason"],
            registry=self.registry,
        )

        self.events_recorded = Counter(
            "binocular_events_recorded",
            "Events appended to the log by this process, by kind.",
            ["kind"],
            registry=self.registry,
        )
        self.payloads_executed = Counter(
            "binocular_subscription_payloads_executed",
            "Subscription payloads computed: one per event for each distinct operation, "
            "variables and viewer, shared by every subscriber with the same answer.",
            registry=self.registry,
        )
        self.payloads_sent = Counter(
            "binocular_subscription_payloads_sent",
            "Subscription payloads sent, one per event per subscriber.",
            registry=self.registry,
        )

        self.graphql_executions = Counter(
            "binocular_graphql_executions",
            "GraphQL executions, by executor: compiled, or graphql-core with the reason "
            "(what the compiler does not handle, disabled, or an error met by the compiled "
            "code, whose answer graphql-core then gives).",
            ["executor", "reason"],
            registry=self.registry,
        )
        self.live_view_subscribers = Gauge(
            "binocular_live_view_subscribers",
            "Subscribers of live views (queueActivityChanged, interactionUpdated, "
            "interactionPanelChanged) on this process.",
            registry=self.registry,
        )
        self.live_view_executions = Counter(
            "binocular_live_view_executions",
            "Live view updates computed: one per group of subscribers with the same answer.",
            ["view"],
            registry=self.registry,
        )
        self.live_view_deliveries = Counter(
            "binocular_live_view_deliveries",
            "Live view updates written to subscribers' sockets, one per subscriber.",
            ["view"],
            registry=self.registry,
        )
        self.live_view_bytes = Counter(
            "binocular_live_view_bytes",
            "Bytes of live view frames written to subscribers' sockets.",
            ["view"],
            registry=self.registry,
        )
        self.live_view_sharing_checks = Counter(
            "binocular_live_view_sharing_checks",
            "Shared live view updates computed again for one subscriber alone "
            "(BINOCULAR_LIVE_VIEW_VERIFY_SHARING).",
            registry=self.registry,
        )
        self.live_view_sharing_mismatches = Counter(
            "binocular_live_view_sharing_mismatches",
            "Shared live view updates that differed from the subscriber's own: a defect.",
            registry=self.registry,
        )

    @staticmethod
    def route(path: str) -> str:
        """A bounded label: unknown paths are one route."""
        return path if path in ROUTES else "other"

    def count_events(self, recorded: list) -> None:
        for event in recorded:
            self.events_recorded.labels(kind=event.kind.value).inc()
            if event.kind == EventKind.MONITORING_STARTED:
                self.sessions_started.inc()
            elif event.kind == EventKind.MONITORING_ENDED:
                self.sessions_ended.labels(reason=event.end_reason.value).inc()

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
