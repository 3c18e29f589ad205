"""Exports a handle's metrics (`slatedb_py.metrics`) to Prometheus, through the
`prometheus_client` library (`pip install slatedb_py[metrics]`).

    from prometheus_client import start_http_server
    from slatedb_py.prometheus import register
    register(db, labels={"db": "orders"})   # any object with .metrics(): Db, DbReader, ...
    start_http_server(9100)

Each scrape takes one `metrics()` snapshot. Names get the `slatedb_py_` prefix; the per-kind
store request counters become one family, `slatedb_py_store_requests_total{kind=...,folder=...}`
(summed over folders, each kind's total); the
durable-wait buckets become the histogram `slatedb_py_durable_wait_seconds`; every other
`*_total` is a counter and the rest are gauges.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, Protocol

from slatedb_py.metrics import STORE_FOLDERS, STORE_KINDS, WAIT_BOUNDS


class HasMetrics(Protocol):
    def metrics(self) -> dict[str, int | float]: ...


_STORE = re.compile(r"store_(\w+?)_requests_total|store_requests_\w+_total")
_DERIVED = ("durable_wait_seconds",)  # folded into the histogram


class Collector:
    """A `prometheus_client` collector of one handle's metrics."""

    def __init__(
        self,
        source: HasMetrics,
        *,
        prefix: str = "slatedb_py",
        labels: dict[str, str] | None = None,
    ) -> None:
        self.source, self.prefix = source, prefix
        self.labels = dict(labels or {})

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import (
            CounterMetricFamily,
            GaugeMetricFamily,
            HistogramMetricFamily,
        )

        m = self.source.metrics()
        names, values = list(self.labels), list(self.labels.values())
        p = self.prefix
        requests = CounterMetricFamily(
            f"{p}_store_requests",
            "object-store requests by kind and database folder",
            labels=[*names, "kind", "folder"],
        )
        for kind in STORE_KINDS:
            for folder in STORE_FOLDERS:
                n = m[f"store_requests_{folder}_{kind}_total"]
                requests.add_metric([*values, kind, folder], n)
        yield requests
        buckets = [(f"{b:g}", m[f"durable_wait_seconds_bucket_le_{b:g}"]) for b in WAIT_BOUNDS] + [
            ("+Inf", m["durable_wait_seconds_bucket_le_inf"])
        ]
        hist = HistogramMetricFamily(
            f"{p}_durable_wait_seconds", "time a durable write waited for its WAL upload",
            labels=names,
        )  # fmt: skip
        hist.add_metric(values, buckets, m["durable_wait_seconds_sum"])
        yield hist
        for name, value in sorted(m.items()):
            if _STORE.fullmatch(name) or name.startswith(_DERIVED):
                continue
            if name.endswith("_total"):
                c = CounterMetricFamily(f"{p}_{name[: -len('_total')]}", name, labels=names)
                c.add_metric(values, value)
                yield c
            else:
                g = GaugeMetricFamily(f"{p}_{name}", name, labels=names)
                g.add_metric(values, value)
                yield g


def register(source: HasMetrics, registry: Any = None, **kwargs: Any) -> Collector:
    """Registers a `Collector` of `source` (default: prometheus_client's global registry);
    returns it, for `registry.unregister` once the handle closes."""
    from prometheus_client import REGISTRY

    collector = Collector(source, **kwargs)
    (REGISTRY if registry is None else registry).register(collector)
    return collector
