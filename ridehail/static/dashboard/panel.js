// The side panel: every value is an element with data-k="name"; a value is written only when its
// text changes, so refreshing the panel after each batch costs next to nothing.

const count = new Intl.NumberFormat("en");

// The summary's quantiles are histogram bucket bounds: "at most this".
function latency(ms) {
  if (ms === null || ms === undefined) return "–";
  return `≤ ${ms < 10 ? ms.toFixed(1) : Math.round(ms)} ms`;
}

export class Panel {
  constructor(root) {
    this.root = root;
    this.fields = new Map();
    for (const el of root.querySelectorAll("[data-k]")) this.fields.set(el.dataset.k, el);
    this.shown = new Map();
    this.connectionBox = root.querySelector(".conn");
  }

  set(key, value) {
    const text = typeof value === "number" ? count.format(value) : String(value);
    if (this.shown.get(key) === text) return;
    this.shown.set(key, text);
    const el = this.fields.get(key);
    if (el) el.textContent = text;
  }

  connection(state, label) {
    this.connectionBox.dataset.conn = state;
    this.set("conn", label);
  }

  drivers(counts) {
    for (const [state, n] of Object.entries(counts)) this.set(`drivers.${state}`, n);
  }

  trips(counts) {
    for (const [state, n] of Object.entries(counts)) this.set(`trips.${state}`, n);
  }

  summary(s) {
    this.set("match.p50", latency(s.match_ms.p50));
    this.set("match.p95", latency(s.match_ms.p95));
    for (const outcome of ["accepted", "declined", "expired"]) {
      this.set(`offers.${outcome}`, s.offers[outcome] || 0);
    }
    this.set("supply.available", s.drivers.available);
    this.set("supply.holding_offers", s.drivers.holding_offers);
    this.set("breaker", s.breaker);
    this.fields.get("breaker").dataset.state = s.breaker;
    this.set("rate_limited", s.rate_limited);
    this.set("fallback_share", `${(100 * s.fallback_share).toFixed(1)} %`);
  }
}
