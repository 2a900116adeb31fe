"""The demo ERP service: articles, orders, a revenue report and the built front end.

Run it with ``python -m uvicorn neuroerp_demo.app:app --port 8000`` from the project
directory. The database is created and seeded at start-up (see :mod:`neuroerp_demo.db`).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, HTTPException, Query, Request, Response, status
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from neuroerp_demo import db
from neuroerp_demo.faults import read_faults, should_fail
from neuroerp_demo.web import router as web_pages
from neuroerp_demo.web import with_security_headers

log = logging.getLogger("neuroerp_demo")

DIST_DIR = Path(__file__).resolve().parent.parent / "frontend" / "dist"
# Health stays truthful under injected errors, so the service still starts and the
# gates (not the start-up wait) are the ones that see the faults.
NO_ERROR_INJECTION = frozenset({"/health"})


class Article(BaseModel):
    id: int
    sku: str
    name: str
    unit_price_cents: int
    stock: int


class OrderIn(BaseModel):
    article_id: int = Field(gt=0)
    quantity: int = Field(gt=0, le=1000)
    customer: str = Field(min_length=1, max_length=120)


class OrderLine(BaseModel):
    article_id: int
    quantity: int
    unit_price_cents: int


class Order(BaseModel):
    id: int
    customer: str
    created_at: str
    status: str
    lines: list[OrderLine]
    total_cents: int


class RevenueDay(BaseModel):
    day: str
    orders: int
    revenue_cents: int


class RevenueReport(BaseModel):
    days: int
    total_cents: int
    rows: list[RevenueDay]


@asynccontextmanager
async def lifespan(_: FastAPI) -> AsyncIterator[None]:
    # Fail fast: a typo in a fault knob must stop the service, not be silently ignored.
    faults = read_faults()
    path = db.init_db()
    log.info("database %s ready; faults %s", path, faults)
    yield


app = FastAPI(title="NeuroERP demo", version="0.1.0", lifespan=lifespan)


@app.middleware("http")
async def inject_faults(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    faults = read_faults()
    if faults.delay_ms > 0:
        await asyncio.sleep(faults.delay_ms / 1000.0)
    # Not security relevant: a uniform draw to pick which requests fail (bandit B311, low).
    if request.url.path not in NO_ERROR_INJECTION and should_fail(
        faults.error_rate, random.random()
    ):
        return with_security_headers(JSONResponse({"detail": "injected fault"}, status_code=500))
    return with_security_headers(await call_next(request))


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/api/articles", response_model=list[Article])
def articles(
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[dict[str, object]]:
    with db.session() as conn:
        return db.list_articles(conn, limit, offset)


@app.get("/api/articles/{article_id}", response_model=Article)
def article(article_id: int) -> dict[str, object]:
    with db.session() as conn:
        try:
            return db.get_article(conn, article_id)
        except db.NotFound as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc


@app.post("/api/orders", response_model=Order, status_code=status.HTTP_201_CREATED)
def create_order(order: OrderIn) -> dict[str, object]:
    with db.session() as conn:
        try:
            return db.create_order(conn, order.article_id, order.quantity, order.customer)
        except db.NotFound as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from exc
        except db.OutOfStock as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc


@app.get("/api/orders/{order_id}", response_model=Order)
def order(order_id: int) -> dict[str, object]:
    with db.session() as conn:
        try:
            return db.get_order(conn, order_id)
        except db.NotFound as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc


@app.get("/api/reports/revenue", response_model=RevenueReport)
def revenue(days: Annotated[int, Query(ge=1, le=365)] = 30) -> dict[str, object]:
    with db.session() as conn:
        rows = db.revenue_by_day(conn, days)
    return {"days": days, "total_cents": sum(r["revenue_cents"] for r in rows), "rows": rows}


@app.get("/", include_in_schema=False)
def index() -> FileResponse:
    return FileResponse(DIST_DIR / "index.html", media_type="text/html")


app.include_router(web_pages)  # /login, /account, /logo.svg
app.mount("/assets", StaticFiles(directory=DIST_DIR / "assets"), name="assets")
