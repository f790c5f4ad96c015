// The map and our own basemap: the city outline and street grid from /v1/city, drawn on a canvas
// under the tile pane. With no tiles (the default, and always offline) it is the whole basemap;
// when tiles are configured and load, they simply cover it, and where they fail it shows through.

const L = window.L;

// Panes, bottom to top. Each live layer has its own canvas, so 2,000 moving drivers never make
// the street grid redraw.
const PANES = { basemap: 150, drivers: 420, trips: 430 };

export function createMap(element) {
  const map = L.map(element, {
    preferCanvas: true,
    zoomSnap: 0.25,
    minZoom: 11,
    maxZoom: 19,
  });
  for (const [name, zIndex] of Object.entries(PANES)) {
    map.createPane(name).style.zIndex = String(zIndex);
  }
  map.getPane("basemap").style.pointerEvents = "none";
  return map;
}

export async function loadCity() {
  const reply = await fetch("/v1/city");
  if (!reply.ok) throw new Error(`GET /v1/city: ${reply.status}`);
  return reply.json();
}

// Draws the city; returns what was drawn (the page reports it to tests).
export function drawCity(map, city, palette) {
  const [south, west, north, east] = city.bbox;
  const bounds = L.latLngBounds([south, west], [north, east]);
  map.fitBounds(bounds, { padding: [12, 12] });
  map.setMaxBounds(bounds.pad(1.5));

  const renderer = L.canvas({ pane: "basemap", padding: 0.5 });
  L.polygon(city.outline, {
    renderer,
    interactive: false,
    color: palette["city-edge"],
    weight: 1.5,
    fillColor: palette["city-fill"],
    fillOpacity: 1,
  }).addTo(map);
  // One multi-polyline for the whole grid: a single layer, a single path on the canvas.
  L.polyline(city.streets, {
    renderer,
    interactive: false,
    color: palette.street,
    weight: 1,
    opacity: 1,
  }).addTo(map);

  const drawn = {
    outline: city.outline.length,
    streets: city.streets.length,
    tiles: city.tiles_url ? "loading" : "none",
  };
  if (city.tiles_url) {
    const tiles = L.tileLayer(city.tiles_url, { maxZoom: 19, attribution: "map tiles" });
    tiles.on("tileload", () => { drawn.tiles = "shown"; });
    tiles.on("tileerror", () => { if (drawn.tiles !== "shown") drawn.tiles = "failed"; });
    tiles.addTo(map);
  }
  return drawn;
}
