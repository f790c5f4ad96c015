// Trips: a pickup and a drop-off marker joined by a line, coloured by state, with a countdown on
// offered trips. Events only change records and mark them dirty; drawing happens in render(),
// once per batch. Ended trips stay a few seconds, then leave the map (their count stays).

const L = window.L;

export const TRIP_STATES = [
  "requested", "offered", "accepted", "arrived", "in_progress",
  "completed", "cancelled", "no_driver",
];
const TERMINAL = new Set(["completed", "cancelled", "no_driver"]);
const ENDED_SHOWN_MS = 4_000;

// What a trip event says about its driver, before the driver's next ping does.
function driverStatusAfter(event) {
  if (event.to === "offered") return "offered";
  if (["accepted", "arrived", "in_progress"].includes(event.to)) return "on_trip";
  if (["decline", "complete", "cancel"].includes(event.action)) return "available";
  return null;
}

export class TripLayer {
  constructor(map, palette, { wantDetails, hintDriver, onClick }) {
    this.map = map;
    this.palette = palette;
    this.wantDetails = wantDetails;
    this.hintDriver = hintDriver;
    this.onClick = onClick;
    this.renderer = L.canvas({ pane: "trips", tolerance: 3 });
    this.trips = new Map(); // every trip seen: id -> record (layers only while on the map)
    this.onMap = new Set();
    this.dirty = new Set();
    this.counts = Object.fromEntries(TRIP_STATES.map((s) => [s, 0]));
  }

  record(id) {
    let trip = this.trips.get(id);
    if (trip === undefined) {
      trip = { id, state: null, version: 0, driver: null, pickup: null, dropoff: null,
        fare: null, expiresAt: null, shownSeconds: null, endedAt: null, layers: null,
        gone: false };
      this.trips.set(id, trip);
    }
    return trip;
  }

  applyEvent(event, now) {
    const trip = this.record(event.trip);
    const version = Number(event.version);
    if (!(version > trip.version)) return; // a repeat, or older than what we know
    this.setState(trip, event.to, version, now);
    if (event.driver) trip.driver = event.driver;
    if (event.action === "offer") {
      trip.expiresAt = null; // each offer has its own deadline: ask for it
      this.wantDetails(trip.id);
    } else if (trip.pickup === null && !TERMINAL.has(trip.state)) {
      this.wantDetails(trip.id);
    }
    const status = driverStatusAfter(event);
    if (status !== null && event.driver) this.hintDriver(event.driver, status);
    this.dirty.add(trip);
  }

  // A trip as GET /v1/trips/{id} returned it.
  applyDetails(body, now) {
    const trip = this.record(body.trip_id);
    trip.pickup = [body.pickup.lat, body.pickup.lng];
    trip.dropoff = [body.dropoff.lat, body.dropoff.lng];
    trip.fare = body.fare;
    if (body.version >= trip.version) {
      if (body.version > trip.version) this.setState(trip, body.state, body.version, now);
      trip.driver = body.driver_id || trip.driver;
      trip.expiresAt = body.offer_expires_at ? Date.parse(body.offer_expires_at) : null;
    }
    this.dirty.add(trip);
  }

  setState(trip, state, version, now) {
    if (trip.state !== null) this.counts[trip.state] -= 1;
    this.counts[state] = (this.counts[state] || 0) + 1;
    trip.state = state;
    trip.version = version;
    if (TERMINAL.has(state)) trip.endedAt = now;
  }

  render(serverNow) {
    for (const trip of this.dirty) this.draw(trip, serverNow);
    this.dirty.clear();
  }

  draw(trip, serverNow) {
    if (trip.pickup === null || trip.gone) return;
    if (trip.layers === null) {
      if (TERMINAL.has(trip.state)) return; // ended before we could draw it
      this.createLayers(trip);
    }
    const colour = this.palette[`t-${trip.state}`] || this.palette["t-no_driver"];
    const ended = TERMINAL.has(trip.state);
    const { line, pickup, dropoff } = trip.layers;
    line.setStyle({
      color: colour, opacity: ended ? 0.4 : 0.85,
      dashArray: trip.state === "in_progress" || ended ? null : "5 5",
    });
    pickup.setStyle({ fillColor: colour, fillOpacity: ended ? 0.4 : 1 });
    dropoff.setStyle({ color: colour, opacity: ended ? 0.4 : 1 });
    const counting = trip.state === "offered" && trip.expiresAt !== null;
    if (counting && !pickup.getTooltip()) {
      pickup.bindTooltip("", {
        permanent: true, direction: "top", offset: [0, -6], className: "countdown",
      });
      trip.shownSeconds = null;
    } else if (!counting && pickup.getTooltip()) {
      pickup.unbindTooltip();
    }
    this.tick(trip, serverNow);
  }

  tick(trip, serverNow) {
    const tooltip = trip.layers.pickup.getTooltip();
    if (!tooltip || trip.expiresAt === null) return;
    const seconds = Math.max(0, Math.ceil((trip.expiresAt - serverNow) / 1000));
    if (seconds !== trip.shownSeconds) {
      trip.shownSeconds = seconds;
      tooltip.setContent(`offer ${seconds}s`);
    }
  }

  createLayers(trip) {
    const common = { renderer: this.renderer };
    const line = L.polyline([trip.pickup, trip.dropoff], { ...common, weight: 2, interactive: false });
    const pickup = L.circleMarker(trip.pickup, {
      ...common, radius: 6, weight: 2, color: "#ffffff", fillOpacity: 1,
    });
    const dropoff = L.circleMarker(trip.dropoff, {
      ...common, radius: 5, weight: 2.5, fillColor: "#ffffff", fillOpacity: 1,
    });
    for (const marker of [pickup, dropoff]) marker.on("click", () => this.onClick(trip, marker));
    trip.layers = { line, pickup, dropoff };
    for (const layer of [line, dropoff, pickup]) layer.addTo(this.map);
    this.onMap.add(trip);
  }

  // Once a second: tick the countdowns, take ended trips off the map.
  sweep(now, serverNow) {
    for (const trip of this.onMap) {
      if (trip.endedAt !== null && now - trip.endedAt > ENDED_SHOWN_MS) {
        for (const layer of Object.values(trip.layers)) layer.remove();
        trip.layers = null;
        trip.gone = true;
        this.onMap.delete(trip);
        continue;
      }
      this.tick(trip, serverNow);
    }
  }

  describe(id) {
    const trip = this.trips.get(id);
    if (trip === undefined) return null;
    const tooltip = trip.layers ? trip.layers.pickup.getTooltip() : null;
    return {
      state: trip.state,
      version: trip.version,
      driver: trip.driver,
      drawn: trip.layers !== null,
      countdown: tooltip ? tooltip.getContent() : null,
    };
  }
}
