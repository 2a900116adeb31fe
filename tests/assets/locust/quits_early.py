"""Ends the whole locust run one second in, long before its planned duration."""

import gevent
from locust import HttpUser, constant, events, task


@events.test_start.add_listener
def _quit_soon(environment, **_kwargs):  # type: ignore[no-untyped-def]
    # locust's own way out of a run, from a greenlet of its own (a user calling it would
    # kill itself half-way through stopping the others).
    gevent.spawn_later(1.0, environment.runner.quit)


class Clerk(HttpUser):
    wait_time = constant(0.05)

    @task
    def health(self) -> None:
        self.client.get("/health", name="GET /health")
