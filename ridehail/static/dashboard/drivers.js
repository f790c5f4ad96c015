// Drivers as circle markers on their own canvas, coloured by status, faded when stale.
// Positions arrive already coalesced (the latest per driver since the last batch), so a batch
// costs at most one setLatLng per driver however fast they ping.

const L = window.L;

export const DRIVER_STATES = ["available", "offered", "on_trip", "offline"];
export const STALE_MS = 30_000; // no ping for this long: faded (as the server stops offering)
const FORGET_MS = 5 * 60_000; // silent this long: taken off the map

export class DriverLayer {
  constructor(map, palette, onClick) {
    this.map = map;
    this.palette = palette;
    this.onClick = onClick;
    this.renderer = L.canvas({ pane: "drivers", tolerance: 3 });
    this.drivers = new Map(); // id -> {marker, status, stale, seen}
  }

  // positions: Map id -> {d, lat, lng, s}
  applyPositions(positions, now) {
    for (const [id, p] of positions) {
      const latlng = [Number(p.lat), Number(p.lng)];
      if (!Number.isFinite(latlng[0]) || !Number.isFinite(latlng[1])) continue;
      let driver = this.drivers.get(id);
      if (driver === undefined) {
        driver = { marker: null, status: p.s, stale: false, seen: now };
        driver.marker = L.circleMarker(latlng, this.style(driver));
        driver.marker.on("click", () => this.onClick(id, driver.marker));
        driver.marker.addTo(this.map);
        this.drivers.set(id, driver);
        continue;
      }
      driver.seen = now;
      driver.marker.setLatLng(latlng);
      this.setStatus(driver, p.s || driver.status, false);
    }
  }

  // A trip event says what a driver now is, before its next ping does.
  hint(id, status) {
    const driver = this.drivers.get(id);
    if (driver !== undefined) this.setStatus(driver, status, driver.stale);
  }

  setStatus(driver, status, stale) {
    if (driver.status === status && driver.stale === stale) return;
    driver.status = status;
    driver.stale = stale;
    driver.marker.setStyle(this.style(driver));
  }

  style(driver) {
    const colour = this.palette[driver.status] || this.palette.offline;
    return {
      renderer: this.renderer,
      radius: 4.5,
      weight: driver.stale ? 1.5 : 1,
      color: driver.stale ? this.palette.stale : "#ffffff",
      opacity: driver.stale ? 0.9 : 0.8,
      fillColor: colour,
      fillOpacity: driver.stale ? 0.2 : 0.95,
    };
  }

  // Once a second: mark the silent stale, forget the long gone; returns counts by state.
  sweep(now) {
    const counts = { total: 0, stale: 0 };
    for (const state of DRIVER_STATES) counts[state] = 0;
    for (const [id, driver] of this.drivers) {
      const silent = now - driver.seen;
      if (silent > FORGET_MS) {
        driver.marker.remove();
        this.drivers.delete(id);
        continue;
      }
      this.setStatus(driver, driver.status, silent > STALE_MS);
      counts.total += 1;
      if (driver.stale) counts.stale += 1;
      else counts[driver.status] = (counts[driver.status] || 0) + 1;
    }
    return counts;
  }

  describe(id) {
    const driver = this.drivers.get(id);
    if (driver === undefined) return null;
    const { lat, lng } = driver.marker.getLatLng();
    return { lat, lng, status: driver.status, stale: driver.stale };
  }
}
