"""Burns the locust process's CPU between requests: the generator, not the target, is the
bottleneck."""

import time

from locust import HttpUser, constant, task


class BurnsCpu(HttpUser):
    wait_time = constant(0)

    @task
    def health(self) -> None:
        started = time.process_time()
        while time.process_time() - started < 0.05:
            pass  # busy: no gevent switch, the whole process is pinned
        self.client.get("/health", name="GET /health")
