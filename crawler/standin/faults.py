"""Fault plans for the E-utilities stand-in: which request gets which failure.

A plan maps (endpoint, N) -> fault, where N counts the requests to that endpoint (1-based) that
passed the api-key and rate-limit checks. Faults replace the normal answer, so a crawler test can
say exactly "the 2nd efetch fails with a 500" and check that the crawl still completes.

Spec syntax (comma-separated), e.g. ``efetch:2=500,efetch:4-6=truncate,esearch:1=429``:

- ``<endpoint>:<N>=<kind>`` or ``<endpoint>:<N>-<M>=<kind>`` (inclusive range); endpoint is one of
  ``esearch efetch einfo epost`` or ``*`` (then N counts all requests, whatever the endpoint).
- kinds: ``500 502 503`` (NCBI-like HTML error page), ``429`` (rate-limit JSON body),
  ``truncate`` (normal body cut at ~60%), ``slow:S`` (sleep S seconds, then answer normally),
  ``error200`` (transient backend ERROR inside a 200 XML body), ``history_lost`` (200 with
  "Unable to obtain query #K"; the WebEnv named in the request is forgotten for good),
  ``ratelimit200`` (the 429 JSON body with status 200), ``reset`` (connection closed, no answer).
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from pipeline.errors import KeaError

ENDPOINTS = ("esearch", "efetch", "einfo", "epost")
ANY = "*"
SIMPLE_KINDS = (
    "500",
    "502",
    "503",
    "429",
    "truncate",
    "error200",
    "history_lost",
    "ratelimit200",
    "reset",
)
DEFAULT_RANDOM_KINDS = ("500", "502", "503", "429", "truncate", "error200", "ratelimit200", "reset")

_ITEM = re.compile(r"^\s*(?P<ep>[a-z*]+):(?P<a>\d+)(?:-(?P<b>\d+))?\s*=\s*(?P<kind>[\w.:]+)\s*$")


class FaultSpecError(KeaError, ValueError):
    """A fault plan string cannot be read; the message quotes the bad item."""


@dataclass(frozen=True)
class Fault:
    """One injected failure: ``kind`` from SIMPLE_KINDS or ``slow`` (then ``seconds`` is set)."""

    kind: str
    seconds: float = 0.0

    @property
    def http_status(self) -> int | None:
        """Status for the HTTP error kinds, None for the others."""
        return int(self.kind) if self.kind.isdigit() else None


def parse_kind(text: str) -> Fault:
    """Read one fault kind ('500', 'slow:2.5', ...); raise FaultSpecError on anything else."""
    if text in SIMPLE_KINDS:
        return Fault(text)
    if text.startswith("slow:"):
        try:
            seconds = float(text[5:])
        except ValueError as err:
            raise FaultSpecError(f"bad slow duration in {text!r}") from err
        if seconds < 0:
            raise FaultSpecError(f"negative slow duration in {text!r}")
        return Fault("slow", seconds)
    raise FaultSpecError(
        f"unknown fault kind {text!r}; use one of {', '.join(SIMPLE_KINDS)}, slow:S"
    )


@dataclass
class FaultPlan:
    """Deterministic (or seeded-random) schedule of faults; safe to share between threads."""

    fixed: dict[tuple[str, int], Fault] = field(default_factory=dict)
    seed: int | None = None
    p: float = 0.0
    kinds: tuple[str, ...] = ()
    endpoints: tuple[str, ...] = ENDPOINTS

    @classmethod
    def parse(cls, spec: str | None) -> FaultPlan:
        """Build a plan from 'efetch:2=500,esearch:1=429'; an empty spec means no faults."""
        plan = cls()
        for item in (spec or "").split(","):
            if not item.strip():
                continue
            m = _ITEM.match(item)
            if m is None:
                raise FaultSpecError(f"bad fault item {item.strip()!r}; expected endpoint:N=kind")
            endpoint = m["ep"]
            if endpoint not in ENDPOINTS and endpoint != ANY:
                raise FaultSpecError(f"unknown endpoint {endpoint!r} in {item.strip()!r}")
            first = int(m["a"])
            last = int(m["b"]) if m["b"] else first
            if first < 1 or last < first:
                raise FaultSpecError(f"bad request number range in {item.strip()!r}")
            fault = parse_kind(m["kind"])
            for n in range(first, last + 1):
                plan.fixed[(endpoint, n)] = fault
        return plan

    @classmethod
    def random(
        cls,
        seed: int,
        p: float = 0.1,
        kinds: tuple[str, ...] = DEFAULT_RANDOM_KINDS,
        endpoints: tuple[str, ...] = ENDPOINTS,
    ) -> FaultPlan:
        """Each request faults with probability p; the draw depends only on (seed, endpoint, N),
        so a soak test is reproducible whatever the thread timing."""
        for k in kinds:
            parse_kind(k)
        if not 0.0 <= p <= 1.0:
            raise FaultSpecError(f"fault probability {p} is not within [0, 1]")
        return cls(seed=seed, p=p, kinds=tuple(kinds), endpoints=tuple(endpoints))

    def fault_for(self, endpoint: str, n: int, n_any: int | None = None) -> Fault | None:
        """The fault for the n-th request to endpoint (n_any: its rank among all requests)."""
        fault = self.fixed.get((endpoint, n))
        if fault is None and n_any is not None:
            fault = self.fixed.get((ANY, n_any))
        if fault is None and self.seed is not None and self.p > 0 and endpoint in self.endpoints:
            rng = random.Random(f"{self.seed}:{endpoint}:{n}")
            if rng.random() < self.p:
                fault = parse_kind(rng.choice(self.kinds))
        return fault

    def __bool__(self) -> bool:
        return bool(self.fixed) or (self.seed is not None and self.p > 0)
