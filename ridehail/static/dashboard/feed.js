// Talking to the API: the event stream (reopened when it drops), admin GETs, and a small queue
// for trip details so a burst of new trips never floods the browser's few connections.

export class EventFeed {
  constructor(token, { onPosition, onTrip, onState }) {
    this.url = `/v1/events?access_token=${encodeURIComponent(token)}`;
    this.onPosition = onPosition;
    this.onTrip = onTrip;
    this.onState = onState;
    this.source = null;
    this.opened = false;
    this.degraded = false;
    this.retryMs = 1_000;
    this.retryTimer = null;
  }

  open() {
    const source = new EventSource(this.url);
    this.source = source;
    source.addEventListener("open", () => {
      this.retryMs = 1_000;
      this.onState(this.opened ? "reopened" : "live");
      this.opened = true;
    });
    source.addEventListener("position", (e) => {
      if (this.degraded) this.recovered();
      this.onPosition(JSON.parse(e.data));
    });
    source.addEventListener("trip", (e) => {
      if (this.degraded) this.recovered();
      this.onTrip(JSON.parse(e.data));
    });
    source.addEventListener("error", (e) => {
      if (e.data !== undefined) { // the server's own `event: error` frame: Redis is down
        this.degraded = true;
        this.onState("redis-down");
        return;
      }
      this.onState("reconnecting");
      if (source.readyState === EventSource.CLOSED) this.reopenLater(); // the browser gave up
    });
  }

  recovered() {
    this.degraded = false;
    this.onState("live");
  }

  reopenLater() {
    if (this.retryTimer !== null) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.open();
    }, this.retryMs);
    this.retryMs = Math.min(this.retryMs * 2, 15_000);
  }

  close() {
    clearTimeout(this.retryTimer);
    if (this.source) this.source.close();
  }
}

export class Api {
  constructor(token, onRefused) {
    this.headers = { Authorization: `Bearer ${token}` };
    this.onRefused = onRefused;
  }

  // The JSON body, or null (not found, an error, no network); a refused token is reported.
  async get(path) {
    let reply;
    try {
      reply = await fetch(path, { headers: this.headers });
    } catch {
      return null;
    }
    if (reply.status === 401 || reply.status === 403) {
      this.onRefused();
      return null;
    }
    return reply.ok ? reply.json() : null;
  }
}

export class DetailQueue {
  constructor(api, onTrip, parallel = 3) {
    this.api = api;
    this.onTrip = onTrip;
    this.parallel = parallel;
    this.waiting = new Set();
    this.inFlight = new Set();
    this.again = new Set(); // asked for again while in flight: the answer may be too old
  }

  want(id) {
    if (this.inFlight.has(id)) this.again.add(id);
    else this.waiting.add(id);
    this.pump();
  }

  pump() {
    while (this.inFlight.size < this.parallel && this.waiting.size > 0) {
      const id = this.waiting.values().next().value;
      this.waiting.delete(id);
      this.inFlight.add(id);
      this.api.get(`/v1/trips/${encodeURIComponent(id)}`).then((body) => {
        this.inFlight.delete(id);
        if (body !== null) this.onTrip(body);
        if (this.again.delete(id)) this.waiting.add(id);
        this.pump();
      });
    }
  }
}
