// The search page: POST /v1/search, then one card per hit with a bar of what each retriever contributed.
"use strict";

const form = document.getElementById("search");
const statusLine = document.getElementById("status");
const fusionLine = document.getElementById("how-fused");
const list = document.getElementById("hits");

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

// Highlight fragments come from the cluster with <em> tags around matches: everything else is escaped.
function safeFragment(fragment) {
  return escapeHtml(fragment).replace(/&lt;em&gt;/g, "<em>").replace(/&lt;\/em&gt;/g, "</em>");
}

function card(hit) {
  const source = hit.source || {};
  const title = source.title || hit.id;
  const fragments = Object.values(hit.highlights || {}).flat();
  const text = fragments.length ? fragments.map(safeFragment).join(" … ")
                                : escapeHtml(String(source.text || "").slice(0, 300));
  const keyword = hit.contributions.keyword || 0;
  const semantic = hit.contributions.semantic || 0;
  // Shares of what each retriever added; a negative contribution (z-score fusion) counts as none.
  const kw = Math.max(0, keyword), sem = Math.max(0, semantic);
  const kwShare = kw + sem > 0 ? (100 * kw) / (kw + sem) : 0;
  const semShare = kw + sem > 0 ? 100 - kwShare : 0;
  const item = document.createElement("li");
  item.className = "hit";
  item.dataset.id = hit.id;
  item.innerHTML =
    // The id beside a title; alone where the document has none (not twice).
    `<h3>${escapeHtml(title)}${source.title ? `<span class="id">${escapeHtml(hit.id)}</span>` : ""}</h3>` +
    `<p>${text}</p>` +
    `<div class="bar" title="keyword ${keyword.toFixed(4)} · semantic ${semantic.toFixed(4)}">` +
    `<span class="keyword" style="width:${kwShare.toFixed(1)}%"></span>` +
    `<span class="semantic" style="width:${semShare.toFixed(1)}%"></span></div>` +
    `<div class="score">score ${hit.score.toFixed(4)} · keyword ${kwShare.toFixed(0)}% · semantic ${semShare.toFixed(0)}%</div>`;
  return item;
}

// With `semsearch serve --token`, the page sends the token it was opened with (/#token=…; the part after #
// never reaches a server or its logs), remembered in this browser.
const hashToken = new URLSearchParams(location.hash.slice(1)).get("token");
if (hashToken) {
  localStorage.setItem("semsearchToken", hashToken);
  history.replaceState(null, "", location.pathname + location.search);
}

function authHeaders() {
  const token = localStorage.getItem("semsearchToken");
  return token ? { authorization: `Bearer ${token}` } : {};
}

async function search(event) {
  if (event) event.preventDefault();
  const data = new FormData(form);
  // In hybrid mode explain too: the answer then says how the lists were fused (shown under the status line).
  const body = { index: data.get("index"), text: data.get("q"), mode: data.get("mode"), k: 10, highlight: true,
                 explain: data.get("mode") === "hybrid" };
  if (data.get("fusion")) body.fusion = { method: data.get("fusion") };
  const params = new URLSearchParams({ q: body.text, index: body.index, mode: body.mode });
  history.replaceState(null, "", `?${params}`);
  statusLine.className = "";
  statusLine.textContent = "Searching…";
  fusionLine.textContent = "";
  list.replaceChildren();
  try {
    const response = await fetch("/v1/search", {
      method: "POST", headers: { "content-type": "application/json", ...authHeaders() }, body: JSON.stringify(body),
    });
    if (response.status === 401) throw new Error("this service needs its token: open the page as /#token=…");
    const text = await response.text();
    let answer;
    try { answer = JSON.parse(text); } catch { throw new Error(`${response.status}: ${text.slice(0, 200)}`); }
    if (!response.ok) throw new Error(answer.error || JSON.stringify(answer.detail || answer));
    list.replaceChildren(...answer.hits.map(card));
    statusLine.textContent = `${answer.hits.length} hits in ${answer.took_ms.toFixed(1)} ms`;
    fusionLine.textContent = answer.fusion ? answer.fusion.description : "";
  } catch (error) {
    statusLine.className = "error";
    statusLine.textContent = `Search failed: ${error.message}`;
  }
}

form.addEventListener("submit", search);
const initial = new URLSearchParams(location.search);
for (const name of ["q", "index", "mode"]) {
  if (initial.get(name)) form.elements[name].value = initial.get(name);
}
if (initial.get("q") && initial.get("index")) search();
