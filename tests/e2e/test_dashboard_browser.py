"""The live map dashboard in a real browser (headless Chromium driven by Playwright).

A private redis-server and a real `ridehail serve` process; the test itself plays drivers and a
rider over the REST API while the page listens to the event stream, and reads what the page shows
through `window.ridehailDashboard`. Without Chromium or the playwright package the tests are
skipped loudly (in CI, where RIDEHAIL_REQUIRE_BROWSER=1, they fail instead).
"""

from __future__ import annotations

import json
import os
import random
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import require_redis_server
from tests.support import ADMIN_TOKEN, running_redis, running_ridehail

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "dashboard.png"
VIEWPORT = {"width": 1280, "height": 800}
ROOMY = {
    "RIDEHAIL_LIMIT_REGISTRATIONS": "100000/60",
    "RIDEHAIL_LIMIT_LOCATION_UPDATES": "100000/60",
    "RIDEHAIL_LIMIT_TRIP_REQUESTS": "100000/60",
    "RIDEHAIL_ACCESS_LOG": "false",
}
WAIT_MS = 10_000

# Samples the basemap's canvas: pixels of the city's fill, and of lines drawn on it (the streets
# and the outline's edge); outside the city the canvas is transparent.
BASEMAP_PIXELS = """() => {
    const canvas = document.querySelector('.leaflet-basemap-pane canvas');
    const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    const [r, g, b] = [0xf7, 0xf5, 0xf0];  // --city-fill
    const isFill = (i) =>
        Math.abs(pixels[i] - r) + Math.abs(pixels[i + 1] - g) + Math.abs(pixels[i + 2] - b) < 12;
    let fill = 0, lines = 0;
    for (let i = 0; i < pixels.length; i += 4 * 7) {
        if (pixels[i + 3] < 250) continue;
        if (isFill(i)) fill++;
        else lines++;
    }
    return {fill, lines, sampled: pixels.length / 28};
}"""


def require_browser() -> None:
    missing = []
    if not Path(CHROMIUM).is_file():
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package (pip install playwright)")
    if not missing:
        return
    message = (
        "NO BROWSER: the dashboard's browser tests are SKIPPED; missing "
        + " and ".join(missing)
        + ". Never `playwright install`: it downloads a browser."
    )
    if os.environ.get("RIDEHAIL_REQUIRE_BROWSER"):
        pytest.fail(message + " (RIDEHAIL_REQUIRE_BROWSER is set)")
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    require_browser()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture
def api() -> Iterator[str]:
    """A fresh Redis and API per test: the event stream starts with a backlog of what is there."""
    require_redis_server()
    with running_redis() as redis_url, running_ridehail(redis_url, **ROOMY) as base:
        yield base


@pytest.fixture
def page(browser: Any, api: str) -> Iterator[Any]:
    """A fresh tab that may talk to 127.0.0.1 only; `page.blocked` lists what it tried elsewhere.

    An uncaught exception in the page fails the test.
    """
    context = browser.new_context(viewport=VIEWPORT)
    tab = context.new_page()
    tab.blocked = []
    errors: list[str] = []
    tab.on("pageerror", lambda error: errors.append(str(error)))

    def only_local(route: Any) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            tab.blocked.append(route.request.url)
            route.abort()

    tab.route("**/*", only_local)
    tab.set_default_timeout(WAIT_MS)
    yield tab
    context.close()
    assert errors == [], f"the page threw: {errors}"


# -- playing drivers and riders over the REST API ----------------------------------------------


@dataclass(frozen=True)
class Party:
    id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Street:
    """Acts as drivers and riders against a running API, at points on the city's streets."""

    def __init__(self, base: str) -> None:
        self.http = httpx.Client(base_url=base, timeout=5)
        city = self.http.get("/v1/city").json()
        self.points = sorted({(lat, lng) for line in city["streets"] for lat, lng in line})
        self.rng = random.Random(5)
        self.drivers: dict[str, Party] = {}
        self.trips: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {}

    def close(self) -> None:
        self.http.close()

    def point(self) -> tuple[float, float]:
        return self.rng.choice(self.points)

    def ok(self, reply: httpx.Response) -> dict[str, Any]:
        assert reply.status_code in (200, 201), reply.text
        body: dict[str, Any] = reply.json()
        return body

    def driver(self) -> Party:
        body = self.ok(self.http.post("/v1/drivers", json={"name": "d" + secrets.token_hex(3)}))
        driver = Party(body["driver_id"], body["token"])
        self.ok(self.http.put(f"/v1/drivers/{driver.id}/status", json={"status": "available"},
                              headers=driver.headers))  # fmt: skip
        self.drivers[driver.id] = driver
        return driver

    def ping(self, driver: Party, at: tuple[float, float]) -> None:
        body = {"lat": at[0], "lng": at[1]}
        reply = self.ok(self.http.put(f"/v1/drivers/{driver.id}/location", json=body,
                                      headers=driver.headers))  # fmt: skip
        assert reply["applied"] is True

    def rider(self) -> Party:
        body = self.ok(self.http.post("/v1/riders", json={"name": "r" + secrets.token_hex(3)}))
        return Party(body["rider_id"], body["token"])

    def request_trip(self, rider: Party, pickup: tuple[float, float]) -> str:
        dropoff = self.point()
        body = {"pickup": {"lat": pickup[0], "lng": pickup[1]},
                "dropoff": {"lat": dropoff[0], "lng": dropoff[1]}}  # fmt: skip
        headers = {**rider.headers, "Idempotency-Key": str(uuid.uuid4())}
        trip_id: str = self.ok(self.http.post("/v1/trips", json=body, headers=headers))["trip_id"]
        self.trips[trip_id] = (pickup, dropoff)
        return trip_id

    def offered_to(self, trip_id: str) -> Party:
        """The driver holding the trip's offer."""
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        trip = self.ok(self.http.get(f"/v1/trips/{trip_id}", headers=admin))
        assert trip["state"] == "offered", trip
        return self.drivers[trip["driver_id"]]

    def act(self, trip_id: str, driver: Party, action: str) -> None:
        self.ok(self.http.post(f"/v1/trips/{trip_id}/{action}", headers=driver.headers))


@pytest.fixture
def street(api: str) -> Iterator[Street]:
    acting = Street(api)
    yield acting
    acting.close()


# -- reading the page ---------------------------------------------------------------------------


def dashboard(page: Any, expression: str) -> Any:
    return page.evaluate(f"window.ridehailDashboard.{expression}")


def wait_for_offer(page: Any, street: Street, trip_id: str) -> Party:
    """Until the page counts down the trip's offer; the driver who holds it."""
    page.wait_for_function(f"window.ridehailDashboard.trip({json.dumps(trip_id)})?.countdown")
    return street.offered_to(trip_id)


def wait_for_trip_state(page: Any, trip_id: str, state: str) -> None:
    page.wait_for_function(
        f"window.ridehailDashboard.trip({json.dumps(trip_id)})?.state === {json.dumps(state)}"
    )


def wait_for_driver_at(page: Any, driver_id: str, at: tuple[float, float]) -> None:
    """Until the driver's marker is drawn at `at`."""
    page.wait_for_function(
        "([id, lat, lng]) => { const d = window.ridehailDashboard.driver(id);"
        " return d && Math.abs(d.lat - lat) < 1e-9 && Math.abs(d.lng - lng) < 1e-9; }",
        arg=[driver_id, *at],
    )


def open_dashboard(page: Any, api: str) -> None:
    page.goto(f"{api}/#token={ADMIN_TOKEN}")
    page.wait_for_function("window.ridehailDashboard?.page.connection === 'live'")


# -- the tests ---------------------------------------------------------------------------------


def test_the_live_map_shows_drivers_moving_and_a_trip_changing_state(
    page: Any, api: str, street: Street
) -> None:
    open_dashboard(page, api)
    assert "token" not in page.url  # the fragment is taken out of the address bar
    drivers = [street.driver() for _ in range(30)]
    for driver in drivers:
        street.ping(driver, street.point())
    page.wait_for_function("window.ridehailDashboard.driverCount() === 30")

    mover = drivers[0]
    before = dashboard(page, f"driver({json.dumps(mover.id)})")
    for _ in range(3):  # a few drivers drive about
        for driver in drivers[:8]:
            street.ping(driver, street.point())
    moved_to = street.point()
    street.ping(mover, moved_to)
    wait_for_driver_at(page, mover.id, moved_to)
    assert (before["lat"], before["lng"]) != moved_to
    assert before["status"] == "available"

    rider = street.rider()
    trip_id = street.request_trip(rider, street.point())
    taker = wait_for_offer(page, street, trip_id)
    assert dashboard(page, f"trip({json.dumps(trip_id)})")["countdown"].startswith("offer ")
    street.act(trip_id, taker, "accept")
    wait_for_trip_state(page, trip_id, "accepted")
    street.ping(taker, street.trips[trip_id][0])
    street.act(trip_id, taker, "arrive")
    wait_for_trip_state(page, trip_id, "arrived")
    assert dashboard(page, f"trip({json.dumps(trip_id)})")["drawn"] is True
    page.wait_for_function(
        f"window.ridehailDashboard.driver({json.dumps(taker.id)}).status === 'on_trip'"
    )

    # More trips, left in other states, so the screenshot shows each kind.
    riding = street.request_trip(street.rider(), street.point())
    driver = wait_for_offer(page, street, riding)
    street.act(riding, driver, "accept")
    (from_lat, from_lng), (to_lat, to_lng) = street.trips[riding]
    street.ping(driver, (from_lat, from_lng))
    street.act(riding, driver, "arrive")
    street.act(riding, driver, "start")
    street.ping(driver, ((2 * from_lat + to_lat) / 3, (2 * from_lng + to_lng) / 3))
    wait_for_trip_state(page, riding, "in_progress")
    street.request_trip(street.rider(), street.point())  # left offered, counting down

    page.wait_for_function(
        "(s => s?.match_ms.p50 != null && s.drivers.holding_offers === 1)"
        "(window.ridehailDashboard.page.summary)"
    )
    page.wait_for_function("window.ridehailDashboard.panelText('trips.offered') === '1'")
    assert dashboard(page, "panelText('trips.arrived')") == "1"
    assert dashboard(page, "panelText('trips.in_progress')") == "1"
    # The panel's driver counts are refreshed once a second.
    wanted = {"total": "30", "available": "27", "offered": "1", "on_trip": "2", "stale": "0"}
    page.wait_for_function(
        f"Object.entries({json.dumps(wanted)})"
        ".every(([k, v]) => window.ridehailDashboard.panelText('drivers.' + k) === v)"
    )
    assert dashboard(page, "panelText('breaker')") == "closed"
    assert dashboard(page, "panelText('conn')") == "live"
    assert page.blocked == []  # everything the page needs comes from our own server

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))


def test_without_a_token_the_page_asks_for_one_and_again_when_it_is_refused(
    page: Any, api: str
) -> None:
    page.goto(api)
    form = page.locator("#token-form")
    form.wait_for(state="visible")
    page.wait_for_function("window.ridehailDashboard.page.basemap?.streets > 0")  # map meanwhile
    form.locator("input").fill("not-the-admin-token")
    form.locator("button").click()
    page.wait_for_function("window.ridehailDashboard?.page.connection === 'refused'")
    form.wait_for(state="visible")
    assert "refused" in form.inner_text()

    form.locator("input").fill(ADMIN_TOKEN)
    form.locator("button").click()  # kept in sessionStorage; the page starts again with it
    page.wait_for_function("window.ridehailDashboard?.page.connection === 'live'")
    assert form.is_hidden()


def test_the_basemap_is_drawn_with_no_network_even_when_tiles_are_configured(
    page: Any, api: str
) -> None:
    def with_tiles(route: Any) -> None:
        city = route.fetch().json()
        city["tiles_url"] = "https://tiles.example.invalid/{z}/{x}/{y}.png"
        route.fulfill(json=city)

    page.route("**/v1/city", with_tiles)
    open_dashboard(page, api)
    page.wait_for_function("window.ridehailDashboard.page.basemap?.tiles === 'failed'")
    basemap = dashboard(page, "page.basemap")
    assert basemap["outline"] > 3
    assert basemap["streets"] > 20
    assert page.blocked, "the tiles were never even asked for"
    assert all("tiles.example.invalid" in url for url in page.blocked), page.blocked

    # The canvas really holds the city: its fill and its streets, not just the sea.
    colours = page.evaluate(BASEMAP_PIXELS)
    assert colours["fill"] > 0.05 * colours["sampled"], colours
    assert colours["lines"] > 0.005 * colours["sampled"], colours


def test_a_driver_that_stops_pinging_is_drawn_stale(page: Any, api: str, street: Street) -> None:
    page.clock.install()  # the page's clock, so half a minute passes at once
    open_dashboard(page, api)
    quiet, chatty = street.driver(), street.driver()
    for driver in (quiet, chatty):
        street.ping(driver, street.point())
    page.wait_for_function("window.ridehailDashboard.driverCount() === 2")
    assert dashboard(page, f"driver({json.dumps(quiet.id)})")["stale"] is False

    page.clock.fast_forward("00:31")
    street.ping(chatty, street.point())
    page.wait_for_function(f"window.ridehailDashboard.driver({json.dumps(quiet.id)}).stale")
    page.wait_for_function("window.ridehailDashboard.panelText('drivers.stale') === '1'")
    assert dashboard(page, f"driver({json.dumps(chatty.id)})")["stale"] is False
    assert dashboard(page, "panelText('drivers.available')") == "1"


def test_two_thousand_drivers_pinging_at_once_never_freeze_the_page(
    page: Any, api: str, street: Street
) -> None:
    """The stream is replaced by bursts of 2,000 drivers x 3 pings, all arriving at once."""
    start = [street.point() for _ in range(2000)]
    end = [street.point() for _ in range(2000)]
    bursts = [start, end]

    def burst(route: Any) -> None:
        final = bursts.pop(0) if bursts else end
        frames = ["retry: 300\n\n"]
        for step in range(3):
            for i, (lat, lng) in enumerate(final):
                offset = (2 - step) * 0.0004  # the last ping of each driver lands on `final`
                data = {
                    "d": f"sim-{i}",
                    "lat": str(lat + offset),
                    "lng": str(lng),
                    "s": "available",
                }
                frames.append(f"event: position\ndata: {json.dumps(data)}\n\n")
        route.fulfill(status=200, content_type="text/event-stream", body="".join(frames))

    page.route("**/v1/events?*", burst)
    page.goto(f"{api}/#token={ADMIN_TOKEN}")
    page.evaluate(
        """() => {
        window.longestFrameMs = 0;
        let last = performance.now();
        const frame = (t) => {
            window.longestFrameMs = Math.max(window.longestFrameMs, t - last);
            last = t;
            requestAnimationFrame(frame);
        };
        requestAnimationFrame(frame);
    }"""
    )
    page.wait_for_function("window.ridehailDashboard.driverCount() === 2000")
    wait_for_driver_at(page, "sim-7", end[7])
    stats = dashboard(page, "page.stats")
    assert stats["received"] >= 12_000
    assert stats["flushes"] < stats["received"] / 100  # batched, not applied one by one
    # Generous bounds (a slow shared CI machine): this guards against freezing, not for speed.
    assert stats["maxFlushMs"] < 500, stats
    longest = page.evaluate("window.longestFrameMs")
    assert longest < 2_000, f"the page froze for {longest:.0f} ms"
