// The live map: wires the basemap, the event feed, the layers and the panel together.
//
// Events are only buffered as they arrive (positions coalesced per driver, trip events in
// order); a batch applies them at most every BATCH_MS, inside requestAnimationFrame, so the
// page keeps up with thousands of pinging drivers. window.ridehailDashboard exposes the page's
// state for tests and for curious operators.

import { createMap, drawCity, loadCity } from "./basemap.js";
import { DriverLayer } from "./drivers.js";
import { Api, DetailQueue, EventFeed } from "./feed.js";
import { Panel } from "./panel.js";
import { askForToken, forgetToken, takeToken } from "./token.js";
import { TripLayer } from "./trips.js";

const L = window.L;
const BATCH_MS = 300;
const SWEEP_MS = 1_000;
const SUMMARY_MS = 2_000;
const CONNECTION_LABELS = {
  connecting: "connecting",
  live: "live",
  reconnecting: "reconnecting…",
  "redis-down": "Redis unavailable",
  refused: "token refused",
  "needs-token": "needs the admin token",
};

// Schedules one run at most every `everyMs`, in an animation frame (directly when the tab is
// hidden, where frames stop but events must still be drained).
class Batcher {
  constructor(run, everyMs) {
    this.run = run;
    this.everyMs = everyMs;
    this.pending = false;
    this.last = 0;
  }

  request() {
    if (this.pending) return;
    this.pending = true;
    const wait = Math.max(0, this.last + this.everyMs - performance.now());
    setTimeout(() => {
      if (document.hidden) this.fire();
      else requestAnimationFrame(() => this.fire());
    }, wait);
  }

  fire() {
    this.pending = false;
    this.last = performance.now();
    this.run();
  }
}

function readPalette() {
  const style = getComputedStyle(document.documentElement);
  const names = ["available", "offered", "on_trip", "offline", "stale", "city-fill", "city-edge",
    "street", "t-requested", "t-offered", "t-accepted", "t-arrived", "t-in_progress",
    "t-completed", "t-cancelled", "t-no_driver"];
  return Object.fromEntries(names.map((n) => [n, style.getPropertyValue(`--${n}`).trim()]));
}

function table(rows) {
  const el = document.createElement("table");
  for (const [name, value] of rows) {
    const tr = el.insertRow();
    tr.insertCell().textContent = name;
    tr.insertCell().textContent = value ?? "–";
  }
  return el;
}

const palette = readPalette();
const map = createMap(document.getElementById("map"));
const panel = new Panel(document.getElementById("panel"));
const page = {
  basemap: null,
  connection: "connecting",
  summary: null,
  driverCounts: {},
  stats: { received: 0, flushes: 0, lastBatch: 0, lastFlushMs: 0, maxFlushMs: 0, eventsPerS: 0 },
};

let pendingPositions = new Map();
let pendingTrips = [];
let pendingDetails = [];
let clockOffsetMs = null; // browser clock minus server clock, from trip events' timestamps
let lastSweep = 0;
let receivedAtSweep = 0;

function setConnection(state) {
  page.connection = state;
  panel.connection(state, CONNECTION_LABELS[state] || state);
}

function serverNow(now) {
  return now - (clockOffsetMs ?? 0);
}

function startLive(token) {
  let refusedOnce = false;
  const refused = async () => {
    if (refusedOnce) return;
    refusedOnce = true;
    feed.close();
    forgetToken();
    setConnection("refused");
    await askForToken(document.getElementById("token-form"), "That token was refused.");
    window.location.reload();
  };
  const api = new Api(token, refused);
  const batcher = new Batcher(flush, BATCH_MS);
  const details = new DetailQueue(api, (body) => {
    pendingDetails.push(body);
    batcher.request();
  });
  const drivers = new DriverLayer(map, palette, async (id, marker) => {
    const d = await api.get(`/v1/drivers/${encodeURIComponent(id)}`);
    const rows = d === null ? [["driver", id], ["", "not found"]]
      : [["driver", d.driver_id], ["status", d.status], ["trip", d.trip_id], ["last seen", d.last_seen]];
    L.popup().setLatLng(marker.getLatLng()).setContent(table(rows)).openOn(map);
  });
  const trips = new TripLayer(map, palette, {
    wantDetails: (id) => details.want(id),
    hintDriver: (id, status) => drivers.hint(id, status),
    onClick: (trip, marker) => {
      const fare = trip.fare ? `${trip.fare.amount} ${trip.fare.currency} (${trip.fare.source})` : null;
      const rows = [["trip", trip.id], ["state", trip.state], ["driver", trip.driver], ["fare", fare]];
      L.popup().setLatLng(marker.getLatLng()).setContent(table(rows)).openOn(map);
    },
  });

  const feed = new EventFeed(token, {
    onPosition(p) {
      pendingPositions.set(p.d, p);
      page.stats.received += 1;
      batcher.request();
    },
    onTrip(t) {
      pendingTrips.push(t);
      page.stats.received += 1;
      const offset = Date.now() - Number(t.ts);
      if (Number.isFinite(offset)) {
        clockOffsetMs = clockOffsetMs === null ? offset : 0.9 * clockOffsetMs + 0.1 * offset;
      }
      batcher.request();
    },
    onState(state) {
      if (state === "reopened") {
        // Events were missed while away: ask again about every trip still on the map.
        for (const trip of trips.onMap) details.want(trip.id);
        state = "live";
      }
      setConnection(state);
    },
  });

  function flush() {
    const started = performance.now();
    const now = Date.now();
    const batch = pendingPositions.size + pendingTrips.length + pendingDetails.length;
    drivers.applyPositions(pendingPositions, now);
    for (const event of pendingTrips) trips.applyEvent(event, now);
    for (const body of pendingDetails) trips.applyDetails(body, now);
    pendingPositions = new Map();
    pendingTrips = [];
    pendingDetails = [];
    trips.render(serverNow(now));
    if (now - lastSweep >= SWEEP_MS) {
      const stats = page.stats;
      stats.eventsPerS = lastSweep ? ((stats.received - receivedAtSweep) * 1000) / (now - lastSweep) : 0;
      receivedAtSweep = stats.received;
      lastSweep = now;
      page.driverCounts = drivers.sweep(now);
      trips.sweep(now, serverNow(now));
      panel.drivers(page.driverCounts);
      panel.set("rate", Math.round(stats.eventsPerS));
      panel.set("footer", `batches every ${BATCH_MS} ms · last: ${stats.lastBatch} updates, `
        + `${stats.lastFlushMs.toFixed(1)} ms`);
    }
    panel.trips(trips.counts);
    const took = performance.now() - started;
    Object.assign(page.stats, {
      flushes: page.stats.flushes + 1,
      lastBatch: batch,
      lastFlushMs: took,
      maxFlushMs: Math.max(page.stats.maxFlushMs, took),
    });
  }

  async function pollSummary() {
    const summary = await api.get("/v1/ops/summary");
    if (summary !== null) {
      page.summary = summary;
      panel.summary(summary);
    }
    setTimeout(pollSummary, SUMMARY_MS);
  }

  Object.assign(window.ridehailDashboard, {
    driverCount: () => drivers.drivers.size,
    driver: (id) => drivers.describe(id),
    trip: (id) => trips.describe(id),
    tripCounts: () => ({ ...trips.counts }),
  });
  setInterval(() => batcher.request(), SWEEP_MS);
  feed.open();
  pollSummary();
}

window.ridehailDashboard = {
  page,
  panelText: (key) => panel.fields.get(key)?.textContent ?? null,
  driverCount: () => 0,
  driver: () => null,
  trip: () => null,
  tripCounts: () => ({}),
};

async function boot() {
  setConnection("connecting");
  try {
    const city = await loadCity();
    page.basemap = drawCity(map, city, palette);
    panel.set("city", city.name);
  } catch (error) {
    page.basemap = { error: String(error) };
    panel.set("footer", `basemap unavailable: ${error}`);
  }
  let token = takeToken();
  if (!token) {
    setConnection("needs-token");
    token = await askForToken(document.getElementById("token-form"));
  }
  startLive(token);
}

// A new #token=... pasted into this tab's address bar does not reload the page: start over.
window.addEventListener("hashchange", () => {
  if (new URLSearchParams(window.location.hash.slice(1)).has("token")) {
    takeToken();
    window.location.reload();
  }
});

boot();
