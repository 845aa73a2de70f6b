"""The bus's health as Prometheus metrics (`streamer_bus_*`), served beside the app's own: a worker's
outbox and camera leases, the memory service's consumer. Read at scrape time on the event loop
that updates them."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import accumulate

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from .leases import CameraLeases
from .outbox import Outbox
from .service import LATENCY_BOUNDS, ServiceStats

_LATENCY_LE = [*map(str, LATENCY_BOUNDS), "+Inf"]  # the histogram's bucket labels


class WorkerCollector(Collector):
    def __init__(self, outbox: Outbox, leases: CameraLeases | None) -> None:
        self._outbox = outbox
        self._leases = leases

    def collect(self) -> Iterator[Metric]:
        s = self._outbox.stats
        yield CounterMetricFamily("streamer_bus_published", "Messages the bus acknowledged.", value=s.published)
        yield CounterMetricFamily("streamer_bus_published_bytes", "Bytes of the messages the bus acknowledged.", value=s.bytes)
        yield GaugeMetricFamily(
            "streamer_bus_buffered", "Messages waiting to be sent (held while the bus is away).", value=len(self._outbox)
        )
        yield CounterMetricFamily("streamer_bus_dropped", "Frames dropped because the buffer was full.", value=s.overflow)
        yield CounterMetricFamily("streamer_bus_publish_retries", "Sends that failed and were tried again.", value=s.retries)
        if self._leases is not None:
            yield GaugeMetricFamily("streamer_bus_cameras_owned", "Shared cameras whose lease this worker holds.", value=len(self._leases.owned))
            yield GaugeMetricFamily(
                "streamer_bus_live_workers", "Workers seen rewriting their heartbeat within the lease's time to live, this one included.",
                value=self._leases.live_workers,
            )
            yield CounterMetricFamily(
                "streamer_bus_takeovers", "Leases taken over from workers that had stopped renewing them.", value=self._leases.takeovers
            )
            yield GaugeMetricFamily(
                "streamer_bus_lease_failed_rounds", "Lease rounds failed in a row (the bus unreachable); cameras are kept meanwhile.",
                value=self._leases.failed_rounds,
            )
            yield CounterMetricFamily(
                "streamer_bus_leases_retaken", "Leases this worker had lost track of (or the bus had lost) and took back.", value=self._leases.retaken
            )


class ServiceCollector(Collector):
    """`stats` is set once the consumer runs; before that only the app's metrics are served."""

    def __init__(self) -> None:
        self.stats: ServiceStats | None = None

    def collect(self) -> Iterator[Metric]:
        s = self.stats
        if s is None:
            return
        yield CounterMetricFamily("streamer_bus_applied", "Messages whose effects the memory committed.", value=s.applied)
        yield CounterMetricFamily("streamer_bus_applied_observations", "Faces in the applied messages.", value=s.observations)
        yield CounterMetricFamily("streamer_bus_duplicates", "Messages already applied, skipped.", value=s.duplicates)
        yield CounterMetricFamily("streamer_bus_malformed", "Foreign or unreadable messages, logged and skipped.", value=s.malformed)
        yield CounterMetricFamily("streamer_bus_apply_seconds", "Time spent applying and committing batches.", value=s.apply_seconds)
        yield CounterMetricFamily(
            "streamer_bus_intake_restarts", "Times the process that reads the bus died (or failed to start) and was started again.",
            value=s.intake_restarts,
        )
        yield GaugeMetricFamily(
            "streamer_bus_consumer_lag", "Messages in the stream not yet delivered to the memory service, at the last batch.", value=s.pending
        )
        yield HistogramMetricFamily(
            "streamer_bus_commit_latency_seconds", "From the bus storing a message to the memory committing its effects.",
            buckets=list(zip(_LATENCY_LE, accumulate(s.latency_counts))), sum_value=s.latency_sum,
        )  # fmt: skip
