// The dashboard: submit orders, watch every order live, inspect one order's timeline and
// routing decision, and see throughput and lifecycle latency at a glance.
//
// Sources: POST /api/orders/execute (the form), WS /api/orders/stream/all (the table, the
// counters and the charts), WS /api/orders/{id}/stream (the detail panel: every event of the
// order once, in seq order, then a normal close), GET /dashboard/tokens.json (the form's
// tokens). Every message is {orderId, status, type, seq, timestamp, data}; `status` is the
// order's status after the event as its writer recorded it (never derived here). It is null
// only for an event recorded before events carried it, and then the last known one stays.
//
// API keys: when the API answers 401 (or a stream closes 4401) the dashboard asks for a key
// once, keeps it in localStorage and sends it as `Authorization: Bearer` (requests) or
// `?token=` (WebSockets, which cannot carry headers from a browser). With AUTH_MODE=off it
// never asks.
"use strict";

const TERMINAL = new Set(["confirmed", "failed", "cancelled", "expired"]);
const MAX_ROWS = 200;
const WINDOW_S = 60;

const state = {
  tokens: new Map(),        // mint or upper-case symbol -> {symbol, mint, decimals}
  orders: new Map(),        // order id -> row model (insertion order = first seen)
  selected: null,           // order id shown in the detail panel
  detailSocket: null,
  perSecond: new Map(),     // epoch second -> {events, finished}
  latencies: [],            // {at: epoch ms, ms: lifecycle latency}
  counts: { confirmed: 0, failed: 0 },
};

// --- small DOM helpers -------------------------------------------------------------------

const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) {
    if (child !== null && child !== undefined) node.append(child);
  }
  return node;
}

function chip(status) {
  return el("span", { class: `chip ${status || ""}` }, status || "unknown");
}

const KEY_STORAGE = "oee.apiKey";
const UNAUTHENTICATED = 4401;

function storedKey() {
  return localStorage.getItem(KEY_STORAGE);
}

// Ask for a key (after a 401); null if the user declines. A refused key is forgotten first.
function askForKey(why) {
  localStorage.removeItem(KEY_STORAGE);
  const typed = window.prompt(`${why}\nAPI key (oee run prints one; oee keys create makes more):`);
  if (!typed || !typed.trim()) return null;
  localStorage.setItem(KEY_STORAGE, typed.trim());
  return typed.trim();
}

async function apiFetch(url, options = {}) {
  const send = () => {
    const key = storedKey();
    const headers = { ...(options.headers || {}), ...(key ? { authorization: `Bearer ${key}` } : {}) };
    return fetch(url, { ...options, headers });
  };
  const response = await send();
  if (response.status !== 401) return response;
  const answer = await response.clone().json().catch(() => ({}));
  return askForKey(answer.message || "This server needs an API key.") ? send() : response;
}

function wsUrl(path) {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const key = storedKey();
  const query = key ? `${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(key)}` : "";
  return `${scheme}//${location.host}${path}${query}`;
}

// --- amounts (base units as strings: never through floating point) ------------------------

function token(mintOrSymbol) {
  return state.tokens.get(mintOrSymbol) || state.tokens.get(String(mintOrSymbol).toUpperCase());
}

function formatUnits(baseUnits, decimals, shown = 6) {
  if (baseUnits === null || baseUnits === undefined || decimals === undefined) return "";
  const digits = String(baseUnits).padStart(decimals + 1, "0");
  const whole = digits.slice(0, digits.length - decimals) || "0";
  const fraction = digits.slice(digits.length - decimals).slice(0, shown).replace(/0+$/, "");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return fraction ? `${grouped}.${fraction}` : grouped;
}

function shortDecimal(text, shown = 6) {
  // Prices are exact decimal strings; show a few decimals without going through a float.
  const [whole, fraction = ""] = String(text).split(".");
  const kept = fraction.slice(0, shown).replace(/0+$/, "");
  return kept ? `${whole}.${kept}` : whole;
}

function symbolOf(mint) {
  const known = token(mint);
  return known ? known.symbol : `${String(mint).slice(0, 4)}...`;
}

function timeOf(iso) {
  return new Date(iso).toLocaleTimeString([], { hour12: false });
}

// --- the orders table ----------------------------------------------------------------------

function orderRow(orderId) {
  let order = state.orders.get(orderId);
  if (!order) {
    order = { id: orderId, status: null, updated: null };
    state.orders.set(orderId, order);
    while (state.orders.size > MAX_ROWS) state.orders.delete(state.orders.keys().next().value);
  }
  return order;
}

function applyEvent(order, message) {
  const data = message.data || {};
  order.status = message.status ?? order.status;
  order.updated = message.timestamp;
  switch (message.type) {
    case "OrderAccepted":
    case "ParentAccepted":
      Object.assign(order, {
        tokenIn: data.tokenInSymbol, tokenOut: data.tokenOutSymbol, amountIn: data.amountIn,
        decimalsIn: data.tokenInDecimals, decimalsOut: data.tokenOutDecimals,
        acceptedAt: Date.parse(message.timestamp),
      });
      break;
    case "RouteSelected": {
      const venues = new Set((data.decision.legs || []).map((leg) => leg.venue));
      order.venue = venues.size === 1 ? [...venues][0] : "split";
      order.expectedOut = data.decision.amountOut;
      break;
    }
    case "OrderConfirmed":
    case "ParentCompleted":
    case "ParentCancelled":
      order.amountOut = data.amountOut;
      break;
  }
  if (TERMINAL.has(message.status) && order.acceptedAt && order.latencyMs === undefined) {
    order.latencyMs = Date.parse(message.timestamp) - order.acceptedAt;
  }
}

function renderOrders() {
  const body = document.querySelector("#orders tbody");
  const rows = [...state.orders.values()].reverse().map((order) => {
    const out = order.amountOut ?? order.expectedOut;
    const row = el("tr", { "data-order-id": order.id },
      el("td", {}, el("code", {}, order.id.slice(0, 8))),
      el("td", {}, order.tokenIn ? `${order.tokenIn} > ${order.tokenOut}` : ""),
      el("td", { class: "num" }, formatUnits(order.amountIn, order.decimalsIn)),
      el("td", {}, chip(order.status)),
      el("td", {}, order.venue || ""),
      el("td", { class: "num" }, out ? formatUnits(out, order.decimalsOut) : ""),
      el("td", { class: "num" }, order.latencyMs !== undefined ? `${order.latencyMs} ms` : ""),
      el("td", {}, order.updated ? timeOf(order.updated) : ""));
    if (order.id === state.selected) row.classList.add("selected");
    row.addEventListener("click", () => openDetail(order.id));
    return row;
  });
  body.replaceChildren(...rows);
  $("orders-empty").hidden = rows.length > 0;
  $("stat-orders").textContent = String(state.orders.size);
  $("stat-confirmed").textContent = String(state.counts.confirmed);
  $("stat-failed").textContent = String(state.counts.failed);
}

let renderQueued = false;
function scheduleRender() {
  // Many events can arrive per frame: draw the table at most once per frame.
  if (renderQueued) return;
  renderQueued = true;
  requestAnimationFrame(() => { renderQueued = false; renderOrders(); });
}

// --- the live feed of every order --------------------------------------------------------------

function countForCharts(message) {
  const second = Math.floor(Date.now() / 1000);
  const bucket = state.perSecond.get(second) || { events: 0, finished: 0 };
  bucket.events += 1;
  if (TERMINAL.has(message.status)) {
    bucket.finished += 1;
    if (message.status === "confirmed") state.counts.confirmed += 1;
    if (message.status === "failed") state.counts.failed += 1;
  }
  state.perSecond.set(second, bucket);
}

function connectFeed(delayMs = 500) {
  const socket = new WebSocket(wsUrl("/api/orders/stream/all"));
  const feed = $("feed-state");
  socket.onopen = () => { feed.textContent = "live"; feed.className = "feed feed-on"; delayMs = 500; };
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    const order = orderRow(message.orderId);
    const wasTerminal = TERMINAL.has(order.status);
    applyEvent(order, message);
    countForCharts(message);
    if (!wasTerminal && order.latencyMs !== undefined && TERMINAL.has(order.status)) {
      state.latencies.push({ at: Date.now(), ms: order.latencyMs });
    }
    scheduleRender();
  };
  socket.onclose = (event) => {
    if (event.code === UNAUTHENTICATED && !askForKey(event.reason)) {
      feed.textContent = "no API key"; feed.className = "feed feed-off";
      return;
    }
    feed.textContent = event.code === 1008 ? "too slow, reconnecting" : "reconnecting";
    feed.className = "feed feed-off";
    setTimeout(() => connectFeed(Math.min(delayMs * 2, 10000)), delayMs);
  };
}

// --- the detail panel: one order's own stream -----------------------------------------------

function openDetail(orderId) {
  if (state.detailSocket) state.detailSocket.close(1000);
  state.selected = orderId;
  $("detail-panel").hidden = false;
  $("detail-id").textContent = orderId;
  setDetailStatus(state.orders.get(orderId)?.status);
  $("timeline").replaceChildren();
  $("detail-chain").dataset.state = "unknown";
  $("detail-chain").textContent = "not verified yet";
  $("routing").replaceChildren(el("p", { class: "empty" }, "No route selected yet."));
  scheduleRender();
  let previous = null, terms = {};  // terms: the order's OrderAccepted data
  const progress = newProgress();
  $("detail-progress").hidden = true;
  const socket = new WebSocket(wsUrl(`/api/orders/${encodeURIComponent(orderId)}/stream`));
  state.detailSocket = socket;
  socket.onmessage = (event) => {
    const message = JSON.parse(event.data);
    if (message.type === "OrderAccepted" || message.type === "ParentAccepted") terms = message.data;
    if (followProgress(progress, message)) renderProgress(progress, terms);
    $("timeline").append(timelineItem(message, previous, terms));
    previous = message;
    if (message.status !== null) setDetailStatus(message.status);
    if (TERMINAL.has(message.status)) verifyChain(orderId);
    if (message.type === "RouteSelected") renderRouting(message.data);
  };
  socket.onclose = (event) => {
    if (state.detailSocket !== socket) return;
    if (event.code !== 1000) {
      $("timeline").append(el("li", {}, el("span"), el("span", { class: "info" },
        `stream closed ${event.code}: ${event.reason || "connection lost"}`)));
    }
  };
}

// The order's hash chain, recomputed from Kafka by the API (GET .../events?verify=true).
// The read model may not hold a just-finished order yet: ask again for a little while.
async function verifyChain(orderId, tries = 0) {
  const node = $("detail-chain");
  const show = (stateName, text) => {
    if (state.selected !== orderId) return;
    node.dataset.state = stateName;
    node.textContent = text;
  };
  show("checking", "checking…");
  try {
    const response = await apiFetch(`/api/orders/${encodeURIComponent(orderId)}/events?verify=true`);
    if (response.status === 404) {
      show("unknown", "not in the read model yet");
      if (tries < 20) setTimeout(() => verifyChain(orderId, tries + 1), 1000);
      return;
    }
    if (!response.ok) return show("unknown", `could not verify (HTTP ${response.status})`);
    const chain = (await response.json()).chain;
    if (chain.verified) {
      const head = chain.head ? `, head ${chain.head.slice(0, 16)}…` : " (written before the chain)";
      return show("verified", `verified: ${chain.events} events${head}`);
    }
    const at = chain.brokenAt;
    show("broken", `broken at seq ${at.seq} (${at.topic}[${at.partition}]@${at.offset}): ${at.reason}`);
  } catch (error) {
    show("unknown", `could not verify (${error})`);
  }
}

// A twap/dca parent's progress, folded from its own stream (its events carry its children's).
function newProgress() {
  return { slices: 0, released: 0, skipped: 0, children: new Map(), parent: false };
}

function followProgress(progress, message) {
  const d = message.data || {};
  switch (message.type) {
    case "ParentAccepted": progress.parent = true; progress.slices = d.sliceAmounts.length; break;
    case "SliceReleased": progress.released += 1; progress.children.set(d.childId, { status: null }); break;
    case "SliceSkipped": progress.skipped += 1; break;
    case "ChildProgressed":
      progress.children.set(d.childId, { status: d.childStatus, amountOut: d.amountOut });
      break;
    default: return progress.parent;
  }
  return true;
}

function renderProgress(progress, terms) {
  const node = $("detail-progress");
  const children = [...progress.children.values()];
  const filled = children.filter((c) => c.status === "confirmed");
  const out = filled.reduce((sum, c) => sum + BigInt(c.amountOut || 0), 0n);
  const remaining = progress.slices - progress.released - progress.skipped;
  node.hidden = false;
  node.textContent = `Progress: ${progress.released} released, ${progress.skipped} skipped, ` +
    `${remaining} remaining of ${progress.slices}; ${filled.length} filled, received ` +
    `${formatUnits(out.toString(), terms.tokenOutDecimals)} ${terms.tokenOutSymbol || ""}`;
}

function setDetailStatus(status) {
  const node = $("detail-status");
  node.className = `chip ${status || ""}`;
  node.textContent = status || "waiting for the first event";
}

function timelineItem(message, previous, terms) {
  const delta = previous ? Date.parse(message.timestamp) - Date.parse(previous.timestamp) : null;
  return el("li", {},
    el("span", { class: "seq" }, String(message.seq)),
    el("span", { class: "type" }, message.type, " ", chip(message.status)),
    el("span", { class: "when" }, timeOf(message.timestamp) + (delta !== null ? `  +${delta} ms` : "")),
    el("span", { class: "info" }, eventSummary(message, terms)));
}

function eventSummary(message, terms) {
  const d = message.data || {};
  switch (message.type) {
    case "OrderAccepted":
      return `${formatUnits(d.amountIn, d.tokenInDecimals)} ${d.tokenInSymbol} for ${d.tokenOutSymbol}, slippage ${d.slippageBps} bps`;
    case "OrderWaiting": return `waiting for ${d.trigger || "its trigger"}`;
    case "PriceObserved": return `best price now ${shortDecimal(d.bestPrice)}`;
    case "OrderTriggered": return `triggered at ${shortDecimal(d.observedPrice)}`;
    case "OrderExpired": return `expired (good till ${d.expiresAt})`;
    case "RoutingStarted": return `attempt ${d.attempt}`;
    case "RouteSelected": return `${d.decision.reason}`;
    case "TransactionBuilt": return `signature ${String(d.signature).slice(0, 16)}...`;
    case "TransactionSubmitted": return `slot ${d.slot}`;
    case "OrderConfirmed":
      return `received ${formatUnits(d.amountOut, terms.tokenOutDecimals)} ${terms.tokenOutSymbol || ""}` +
        `, price ${shortDecimal(d.executedPrice)}, slot ${d.slot}`;
    case "ExecutionAttemptFailed": return `attempt ${d.attempt} at ${d.stage}: ${d.message}`;
    case "RetryScheduled": return `attempt ${d.nextAttempt} in ${d.delayMs} ms`;
    case "OrderFailed": return `${d.reasonCode}: ${d.message}`;
    case "OrderCancelled": return d.reason || "cancelled";
    case "CancelRejected": return d.reason;
    case "OrderRedriven": return `re-driven at ${d.stage}`;
    case "ParentAccepted":
      return `${d.orderType}: ${formatUnits(d.amountIn, d.tokenInDecimals)} ${d.tokenInSymbol} for ` +
        `${d.tokenOutSymbol} in ${d.sliceAmounts.length} slices every ${d.intervalS} s`;
    case "SliceReleased": return `slice ${d.sliceIndex + 1}: order ${d.childId}`;
    case "SliceSkipped":
      return `slice ${d.sliceIndex + 1} skipped: ${d.reason}` +
        (d.observedPrice ? ` (price ${shortDecimal(d.observedPrice)})` : "");
    case "ChildProgressed": return `${String(d.childId).slice(0, 8)}… is ${d.childStatus}`;
    case "ParentCancelRequested": return `no more slices; cancelling live children (${d.reason || "no reason"})`;
    case "ParentCompleted": case "ParentCancelled":
      return `spent ${formatUnits(d.amountIn, terms.tokenInDecimals)} ${terms.tokenInSymbol || ""}, ` +
        `received ${formatUnits(d.amountOut, terms.tokenOutDecimals)} ${terms.tokenOutSymbol || ""}`;
    default: return "";
  }
}

function renderRouting(data) {
  const decision = data.decision;
  const tIn = token(decision.tokenIn), tOut = token(decision.tokenOut);
  const winners = new Set((decision.legs || []).map((leg) => `${leg.venue}|${leg.path.join(">")}`));
  const venue = winners.size === 1 ? decision.legs[0].venue : "split";
  const quotes = el("table", {},
    el("thead", {}, el("tr", {}, ...["Venue", "Route", "Amount out", "Fee", "Impact (bps)"]
      .map((text, i) => el("th", { class: i >= 2 ? "num" : "" }, text)))),
    el("tbody", {}, ...decision.quotes.map((quote) => el("tr",
      { class: winners.has(`${quote.venue}|${quote.path.join(">")}`) ? "winner" : "" },
      el("td", {}, quote.venue),
      el("td", {}, quote.path.map(symbolOf).join(" > ")),
      el("td", { class: "num" }, formatUnits(quote.amountOut, tOut?.decimals)),
      el("td", { class: "num" }, formatUnits(quote.fee, tIn?.decimals)),
      el("td", { class: "num" }, quote.priceImpactBps)))));
  const legs = (decision.legs || []).map((leg) =>
    `${leg.venue} ${formatUnits(leg.amountIn, tIn?.decimals)} ${tIn?.symbol || ""} > ` +
    `${formatUnits(leg.amountOut, tOut?.decimals)} ${tOut?.symbol || ""}`);
  $("routing").replaceChildren(
    el("dl", { class: "kv" },
      el("dt", {}, "Winner"), el("dd", {}, el("b", {}, venue)),
      el("dt", {}, "Split"), el("dd", {}, legs.join("; ")),
      el("dt", {}, "Expected out"), el("dd", {}, `${formatUnits(decision.amountOut, tOut?.decimals)} ${tOut?.symbol || ""}`),
      el("dt", {}, "Minimum out"), el("dd", {}, `${formatUnits(data.minAmountOut, tOut?.decimals)} ${tOut?.symbol || ""}`)),
    quotes,
    el("p", { class: "reason" }, decision.reason));
}

// --- the order form ------------------------------------------------------------------------

async function loadTokens() {
  const response = await fetch("/dashboard/tokens.json");
  const tokens = await response.json();
  for (const t of tokens) {
    state.tokens.set(t.mint, t);
    state.tokens.set(t.symbol.toUpperCase(), t);
  }
  for (const [id, preferred] of [["token-in", "SOL"], ["token-out", "USDC"]]) {
    $(id).replaceChildren(...tokens.map((t) => el("option", { value: t.symbol }, t.symbol)));
    $(id).value = preferred;
  }
}

// The extra terms of a limit or sniper order; empty inputs are left out (the API's defaults).
function conditionalTerms(type) {
  const terms = {};
  const put = (name, id) => { const v = $(id).value.trim(); if (v) terms[name] = v; };
  if (type === "limit") {
    put("limitPrice", "limit-price");
    const expires = $("expires-at").value;
    if (expires) terms.expiresAt = new Date(expires).toISOString();
  } else if (type === "twap" || type === "dca") {
    if (type === "twap") put("slices", "slices"); else put("amountPerSlice", "amount-per-slice");
    put("intervalS", "interval-s");
    put("minSlicePrice", "min-slice-price");
    put("maxSlicePrice", "max-slice-price");
  } else if (type === "sniper") {
    terms.trigger = $("trigger").value;
    if (terms.trigger === "liquidity") put("minLiquidityUsd", "min-liquidity");
    put("maxPrice", "max-price");
    const mint = $("sniper-mint").value.trim();
    if (mint) {
      terms.tokenOut = mint;
      terms.tokenOutDecimals = Number($("sniper-decimals").value || 6);
    }
  }
  return terms;
}

function showTermsFor(type) {
  $("limit-fields").hidden = type !== "limit";
  $("sniper-fields").hidden = type !== "sniper";
  $("schedule-fields").hidden = type !== "twap" && type !== "dca";
  $("slices-label").hidden = type !== "twap";
  $("per-slice-label").hidden = type !== "dca";
}

async function submitOrder(event) {
  event.preventDefault();
  const message = $("form-message"), button = $("submit-order");
  const body = {
    orderType: $("order-type").value,
    tokenIn: $("token-in").value, tokenOut: $("token-out").value,
    amount: $("amount").value.trim(), slippageBps: Number($("slippage").value),
    ...conditionalTerms($("order-type").value),
  };
  button.disabled = true;
  try {
    const response = await apiFetch("/api/orders/execute", {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
    });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.message || `HTTP ${response.status}`);
    message.className = "message ok";
    message.textContent = `Accepted: order ${answer.orderId}`;
    const order = orderRow(answer.orderId);
    order.status = order.status ?? answer.status;  // the feed may have been faster
    openDetail(answer.orderId);
  } catch (error) {
    message.className = "message error";
    message.textContent = error.message;
  } finally {
    button.disabled = false;
  }
}

// --- charts ----------------------------------------------------------------------------------

function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

function drawCharts() {
  const now = Math.floor(Date.now() / 1000);
  const seconds = [...Array(WINDOW_S).keys()].map((i) => now - WINDOW_S + 1 + i);
  for (const second of state.perSecond.keys()) if (second <= now - WINDOW_S) state.perSecond.delete(second);
  const labels = [[0, "-60 s"], [29, "-30 s"], [WINDOW_S - 1, "now"]];
  Plot.plotSeries($("throughput"), [
    { kind: "bar", color: "#9db4ec", values: seconds.map((s) => state.perSecond.get(s)?.events || 0) },
    { kind: "line", color: "#1f8a4c", values: seconds.map((s) => state.perSecond.get(s)?.finished || 0) },
  ], { labels, emptyText: "waiting for events" });

  const cutoff = Date.now() - WINDOW_S * 1000;
  state.latencies = state.latencies.filter((l) => l.at >= cutoff);
  const windows = 30, span = (WINDOW_S * 1000) / windows;
  const groups = [...Array(windows).keys()].map((i) => state.latencies
    .filter((l) => l.at >= cutoff + i * span && l.at < cutoff + (i + 1) * span)
    .map((l) => l.ms).sort((a, b) => a - b));
  Plot.plotSeries($("latency"), [
    { kind: "line", color: "#2f5bd3", values: groups.map((g) => percentile(g, 0.5)) },
    { kind: "line", color: "#b7791f", values: groups.map((g) => percentile(g, 0.99)) },
  ], { labels: [[0, "-60 s"], [14, "-30 s"], [29, "now"]], emptyText: "no finished orders yet" });
}

// --- initial state ----------------------------------------------------------------------------

async function loadRecentOrders() {
  // The read model's list, when this deployment serves it; the live feed fills in the rest.
  try {
    const response = await apiFetch("/api/orders?limit=50");
    if (!response.ok) return;
    const body = await response.json();
    const items = body.items || body.orders || body.data || [];
    for (const item of [...items].reverse()) {
      if (!item.orderId) continue;
      const order = orderRow(item.orderId);
      Object.assign(order, {
        status: item.status, tokenIn: item.tokenIn?.symbol || item.tokenIn,
        tokenOut: item.tokenOut?.symbol || item.tokenOut, venue: item.venue,
        updated: item.updatedAt || item.createdAt,
      });
    }
    scheduleRender();
  } catch (error) {
    console.warn("no order list:", error);
  }
}

function start() {
  $("order-form").addEventListener("submit", submitOrder);
  $("order-type").addEventListener("change", (e) => showTermsFor(e.target.value));
  $("swap-tokens").addEventListener("click", () => {
    const a = $("token-in").value;
    $("token-in").value = $("token-out").value;
    $("token-out").value = a;
  });
  $("detail-verify").addEventListener("click", () => {
    if (state.selected) verifyChain(state.selected);
  });
  $("detail-close").addEventListener("click", () => {
    if (state.detailSocket) state.detailSocket.close(1000);
    state.selected = null; state.detailSocket = null;
    $("detail-panel").hidden = true;
    scheduleRender();
  });
  loadTokens().catch((error) => { $("form-message").textContent = `tokens: ${error.message}`; });
  // The list first: its 401 is where the dashboard asks for a key, before the feed opens.
  loadRecentOrders().then(connectFeed);
  drawCharts();
  setInterval(drawCharts, 1000);
  renderOrders();
}

start();
