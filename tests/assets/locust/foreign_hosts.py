"""A locustfile that also sends requests to a host outside allowed_hosts: an absolute URL
(HttpUser and FastHttpUser), and a redirect from the allowed target to that host."""

import os

from locust import FastHttpUser, HttpUser, constant, task

FOREIGN_URL = os.environ["NEUROERP_TEST_FOREIGN_URL"]


class Shopper(HttpUser):
    wait_time = constant(0.05)

    @task
    def local(self) -> None:
        self.client.get("/ok")

    @task
    def absolute(self) -> None:
        self.client.get(FOREIGN_URL, name="absolute")

    @task
    def redirected(self) -> None:
        self.client.get("/hop", name="redirected")


class FastShopper(FastHttpUser):
    wait_time = constant(0.05)

    @task
    def absolute(self) -> None:
        self.client.get(FOREIGN_URL, name="fast-absolute")
