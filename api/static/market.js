// The market panel: every pair's spot price on each venue, refreshed every second from
// GET /api/market/prices (the API's in-memory market view, no database). The venue that pays
// the most quote for the base token is marked: that is where a sell of the base would go
// before fees, and the fee column says whether the gap is worth it.
"use strict";

const MARKET_REFRESH_MS = 1000;

function compareDecimal(a, b) {
  // Exact order of two non-negative decimal strings, never through a float.
  const [aWhole, aFraction = ""] = a.split(".");
  const [bWhole, bFraction = ""] = b.split(".");
  const width = Math.max(aWhole.length, bWhole.length);
  const places = Math.max(aFraction.length, bFraction.length);
  const left = aWhole.padStart(width, "0") + aFraction.padEnd(places, "0");
  const right = bWhole.padStart(width, "0") + bFraction.padEnd(places, "0");
  return left < right ? -1 : left > right ? 1 : 0;
}

function venueCell(quote, best) {
  const label = `${quote.venue} ${shortDecimal(quote.price, 8)} (${quote.feeBps} bps)`;
  return el("span", { class: quote === best ? "venue best" : "venue",
                      "data-venue": quote.venue }, label);
}

function renderMarket(board) {
  const rows = board.pairs.map((pair) => {
    // A pair on one venue has no better venue to mark.
    const best = pair.venues.length < 2 ? null
      : pair.venues.reduce((a, b) => (compareDecimal(b.price, a.price) > 0 ? b : a));
    const name = `${pair.base.symbol}/${pair.quote.symbol}`;
    return el("tr", { "data-pair": name }, el("td", {}, name),
      el("td", {}, ...pair.venues.map((quote) => venueCell(quote, best))));
  });
  $("market").querySelector("tbody").replaceChildren(...rows);
}

async function refreshMarket() {
  try {
    // The stored API key (app.js asks for it); a 401 before it is given is simply retried.
    const key = storedKey();
    const response = await fetch("/api/market/prices",
      key ? { headers: { authorization: `Bearer ${key}` } } : {});
    if (response.ok) renderMarket(await response.json());
  } catch (error) {
    console.warn("no market board:", error);
  }
}

refreshMarket();
setInterval(refreshMarket, MARKET_REFRESH_MS);
