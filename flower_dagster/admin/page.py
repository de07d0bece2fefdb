"""The admin's one HTML page: sign in with a token, see my models and a calendar of their
partitions, preview, launch and follow backfills with each failed partition's reason.

Plain HTML and a little JavaScript over the JSON API, no build step and nothing loaded from
elsewhere. The token is kept in the tab's sessionStorage only (gone when the tab closes) and sent
as a bearer header; behind an authenticating proxy the page works without one.
"""

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Backfills - flower-dagster</title>
<style>
  body { font-family: system-ui, sans-serif; margin: 0; color: #1f2328; background: #f6f8fa; }
  header { background: #24292f; color: #fff; padding: 12px 24px; display: flex;
           justify-content: space-between; align-items: center; }
  header h1 { font-size: 18px; margin: 0; }
  main { max-width: 1100px; margin: 0 auto; padding: 16px 24px; }
  section { background: #fff; border: 1px solid #d0d7de; border-radius: 6px; padding: 16px;
            margin-bottom: 16px; }
  h2 { font-size: 16px; margin: 0 0 12px; }
  table { border-collapse: collapse; width: 100%; font-size: 14px; }
  th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid #eaeef2;
           white-space: nowrap; }
  td.reason { white-space: normal; }
  th { color: #57606a; font-weight: 600; }
  label { display: inline-block; margin-right: 12px; font-size: 14px; }
  input, select, button { font: inherit; padding: 4px 8px; }
  input[name=reason] { width: 320px; }
  button { cursor: pointer; border: 1px solid #d0d7de; border-radius: 6px; background: #f6f8fa; }
  button.primary { background: #1f883d; color: #fff; border-color: #1a7f37; }
  .cell { display: inline-block; width: 14px; height: 14px; margin-right: 2px; border-radius: 2px;
          background: #d0d7de; }
  .materialized { background: #2da44e; } .failed { background: #cf222e; }
  .materializing { background: #bf8700; } .unsynced { background: #a371f7; }
  .calendar { display: flex; flex-wrap: wrap; gap: 2px; max-width: 1000px; margin: 4px 0 12px; }
  .calendar.daily { display: grid; grid-template-rows: repeat(7, 12px); grid-auto-flow: column;
                    grid-auto-columns: 12px; }
  .calendar .cell { width: 12px; height: 12px; margin: 0; }
  .legend .cell { vertical-align: middle; margin-left: 8px; }
  tr.failure td { color: #cf222e; white-space: normal; font-size: 13px; border-bottom: 0; }
  #preview ul { margin: 4px 0; }
  .bar { width: 180px; height: 12px; background: #eaeef2; border-radius: 6px; overflow: hidden;
         display: inline-flex; vertical-align: middle; }
  .bar .done { background: #2da44e; } .bar .failed { background: #cf222e; }
  .bar .running { background: #bf8700; }
  .error { color: #cf222e; } .ok { color: #1a7f37; } .muted { color: #57606a; font-size: 13px; }
  #signin input { width: 360px; }
  [hidden] { display: none !important; }
</style>
</head>
<body>
<header><h1>Backfills</h1><span id="whoami"></span></header>
<main>
<section id="signin" hidden>
  <h2>Sign in</h2>
  <p class="muted">Paste the token the platform team issued you. It stays in this tab only.</p>
  <form id="signin-form">
    <input id="token" type="password" autocomplete="off" placeholder="token">
    <button id="login" class="primary" type="submit">Sign in</button>
  </form>
  <p id="signin-error" class="error"></p>
</section>

<div id="app" hidden>
<section>
  <h2>Your models</h2>
  <p class="muted" id="models-note"></p>
  <table id="models">
    <thead><tr><th>model</th><th>grain</th><th>owner</th><th>partitions</th><th>built</th>
      <th>latest partitions (oldest to newest)</th><th></th></tr></thead>
    <tbody></tbody>
  </table>
</section>

<section>
  <h2>Partitions at a glance</h2>
  <p class="muted legend">Each square is a partition, oldest first (days in columns of a week):
    <span class="cell materialized"></span> built
    <span class="cell unsynced"></span> Unsynced (built from inputs that changed since)
    <span class="cell failed"></span> failed
    <span class="cell materializing"></span> running
    <span class="cell"></span> missing</p>
  <div id="calendars"></div>
</section>

<section>
  <h2>New backfill</h2>
  <form id="launch-form">
    <label>model <select id="bf-model" name="model"></select></label>
    <label>from <input id="bf-from" name="from" placeholder="YYYY-MM-DD" size="16"></label>
    <label>to <input id="bf-to" name="to" placeholder="YYYY-MM-DD" size="16"></label>
    <label>reason <input id="bf-reason" name="reason" placeholder="why, for the log"></label>
    <label><input id="bf-include" type="checkbox"> also build missing inputs first</label>
    <button id="preview-button" type="button">Preview</button>
    <button id="launch" class="primary" type="submit">Launch backfill</button>
  </form>
  <p id="message"></p>
  <div id="preview"></div>
</section>

<section>
  <h2>Your backfills</h2>
  <table id="backfills">
    <thead><tr><th>id</th><th>model</th><th>range</th><th>status</th><th>progress</th>
      <th>reason</th><th></th></tr></thead>
    <tbody></tbody>
  </table>
</section>
</div>
</main>
<script>
const state = { token: sessionStorage.getItem("flower-token") || "" };

function headers(json) {
  const h = {};
  if (state.token) h["Authorization"] = "Bearer " + state.token;
  if (json) h["Content-Type"] = "application/json";
  return h;
}

async function api(method, path, body) {
  const response = await fetch(path, {
    method, headers: headers(body !== undefined),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = {};
  try { data = await response.json(); } catch (e) {}
  return { status: response.status, data };
}

function text(tag, value, cls) {
  const el = document.createElement(tag);
  el.textContent = value == null ? "" : String(value);
  if (cls) el.className = cls;
  return el;
}

function describe(data) {
  return (data.error || "refused") + (data.allowed ? " - allowed: " + data.allowed : "");
}

async function start() {
  const me = await api("GET", "/api/me");
  if (me.status === 401) {
    document.getElementById("signin").hidden = false;
    document.getElementById("app").hidden = true;
    if (state.token) document.getElementById("signin-error").textContent = describe(me.data);
    return;
  }
  document.getElementById("signin").hidden = true;
  document.getElementById("app").hidden = false;
  const who = document.getElementById("whoami");
  who.textContent = me.data.name + " (" + me.data.groups.join(", ") + ") ";
  const out = text("button", "Sign out");
  out.onclick = () => { sessionStorage.removeItem("flower-token"); state.token = "";
                        location.reload(); };
  if (state.token) who.appendChild(out);
  await loadModels();
  await loadBackfills();
  setInterval(loadBackfills, 2000);
  setInterval(loadModels, 10000);
}

async function loadModels() {
  const { data } = await api("GET", "/api/models");
  const body = document.querySelector("#models tbody");
  const select = document.getElementById("bf-model");
  const chosen = select.value;  // a refresh keeps what the person picked
  body.replaceChildren(); select.replaceChildren();
  document.getElementById("models-note").textContent =
    data.dagster_error ? "Partition states unavailable: " + data.dagster_error : "";
  for (const m of data.models || []) {
    const row = document.createElement("tr");
    row.dataset.model = m.model;
    const c = m.counts;
    const built = c ? c.materialized + " of " + c.total +
      (c.failed ? ", " + c.failed + " failed" : "") +
      (c.materializing ? ", " + c.materializing + " running" : "") : "?";
    row.append(text("td", m.model), text("td", m.grain), text("td", m.owner),
               text("td", m.first_partition + " to " + m.last_partition),
               text("td", built, "built"));
    const cells = document.createElement("td");
    for (const p of m.recent || []) {
      const cell = text("span", "", "cell " + p.status);
      cell.title = p.partition + ": " + p.status;
      cells.append(cell);
    }
    const pick = text("button", "Backfill...");
    pick.onclick = () => { select.value = m.model; document.getElementById("bf-from").focus(); };
    const action = document.createElement("td"); action.append(pick);
    row.append(cells, action);
    body.append(row);
    const option = text("option", m.model + " (" + m.grain + ")");
    option.value = m.model;
    select.append(option);
  }
  if (chosen) select.value = chosen;
  drawCalendars(data.models || []);
}

function drawCalendars(models) {
  const box = document.getElementById("calendars");
  box.replaceChildren();
  for (const m of models) {
    const cells = m.calendar || [];
    const title = text("div", m.model + " (" + m.grain + ")" +
      (cells.length ? ": " + cells[0][0] + " to " + cells[cells.length - 1][0] : ""));
    const grid = document.createElement("div");
    grid.className = "calendar " + m.grain;
    grid.dataset.model = m.model;
    if (m.grain === "daily" && cells.length) {
      // Start the first column on its weekday, so each row is one day of the week.
      const monday = (new Date(cells[0][0] + "T00:00:00Z").getUTCDay() + 6) % 7;
      for (let i = 0; i < monday; i++) grid.append(text("span", "", "pad"));
    }
    for (const [partition, status] of cells) {
      const cell = text("span", "", "cell " + status);
      cell.title = partition + ": " + (status === "materialized" ? "built" : status);
      cell.dataset.partition = partition;
      grid.append(cell);
    }
    box.append(title, grid);
  }
}

function listItems(items) {
  const ul = document.createElement("ul");
  for (const item of items) ul.append(text("li", item));
  return ul;
}

function showCheck(data) {
  const box = document.getElementById("preview");
  box.replaceChildren();
  if (data.inputs && data.inputs.length) {
    box.append(text("div", "Inputs not built:", "error"),
               listItems(data.inputs.map(g => g.text)));
  }
  const impact = data.impact;
  if (!impact) return;
  const reruns = impact.reruns.map(r => r.model + " (" + r.grain + "): " + r.ranges.join(", ") +
    " - " + r.partitions + " partition" + (r.partitions === 1 ? "" : "s"));
  box.append(text("div", "The repair rule then re-runs:"),
             listItems(reruns.length ? reruns : ["nothing downstream"]));
  const notes = impact.not_yet.map(n => "not yet: " + n.model + " " + n.ranges.join(", ") +
                                    " (its window has not ended)")
    .concat(impact.not_rerun.map(n => "not re-run by the rule: " + n.model + " (" + n.why + ")"));
  if (notes.length) box.append(listItems(notes));
}

function formBody() {
  const body = {
    model: document.getElementById("bf-model").value,
    from: document.getElementById("bf-from").value.trim(),
    to: document.getElementById("bf-to").value.trim(),
  };
  if (document.getElementById("bf-include").checked) body.include_inputs = true;
  return body;
}

document.getElementById("preview-button").onclick = async () => {
  const body = formBody(); delete body.include_inputs;
  const r = await api("POST", "/api/backfills/preview", body);
  if (r.status !== 200) {
    show((r.data.field ? r.data.field + ": " : "") + describe(r.data), false);
    return;
  }
  show(r.data.ready ? "Ready to launch: " + r.data.partitions + " partitions of " + r.data.model
       : describe(r.data.refusal), r.data.ready);
  showCheck(r.data);
};

async function loadBackfills() {
  const { status, data } = await api("GET", "/api/backfills");
  if (status !== 200) return;
  const body = document.querySelector("#backfills tbody");
  body.replaceChildren();
  for (const b of data.backfills) {
    const row = document.createElement("tr");
    row.dataset.id = b.id; row.dataset.status = b.status;
    const p = b.partitions, total = Math.max(p.targeted, 1);
    const bar = document.createElement("span"); bar.className = "bar";
    for (const [cls, n] of [["done", p.done], ["failed", p.failed], ["running", p.in_progress]]) {
      const part = document.createElement("span"); part.className = cls;
      part.style.width = (100 * n / total) + "%"; bar.append(part);
    }
    const progress = document.createElement("td"); progress.className = "progress";
    progress.append(bar, text("span", " " + p.done + "/" + p.targeted + " done" +
      (p.failed ? ", " + p.failed + " failed" : "") +
      (p.in_progress ? ", " + p.in_progress + " in progress" : "")));
    const action = document.createElement("td");
    if (!b.finished) {
      const cancel = text("button", "Cancel");
      cancel.onclick = async () => {
        const r = await api("POST", "/api/backfills/" + b.id + "/cancel", {});
        show(r.status === 200 ? "Cancelling " + b.id : describe(r.data), r.status === 200);
        loadBackfills();
      };
      action.append(cancel);
    }
    row.append(text("td", b.id), text("td", b.models.join(", ")),
               text("td", b.from === b.to ? b.from : b.from + " to " + b.to),
               text("td", b.status, "status"), progress, text("td", b.reason, "reason"),
               action);
    body.append(row);
    // Each failed partition's reason, partitions with the same reason together.
    const grouped = new Map();
    for (const f of b.failures || []) {
      const key = f.model + " | " + f.reason;
      if (!grouped.has(key)) grouped.set(key, { model: f.model, reason: f.reason, keys: [] });
      grouped.get(key).keys.push(f.partition);
    }
    const lines = [...grouped.values()].map(g => "failed " + g.model + " " +
      (g.keys.length > 3 ? g.keys[0] + " .. " + g.keys[g.keys.length - 1] + " (" +
       g.keys.length + ")" : g.keys.join(", ")) + ": " + g.reason);
    if (p.failed && b.failures_unknown) lines.push("why it failed: " + b.failures_unknown);
    for (const line of lines) {
      const failure = document.createElement("tr");
      failure.className = "failure"; failure.dataset.failureOf = b.id;
      const cell = text("td", line); cell.colSpan = 7;
      failure.append(cell); body.append(failure);
    }
  }
}

function show(message, ok) {
  const el = document.getElementById("message");
  el.textContent = message; el.className = ok ? "ok" : "error";
}

document.getElementById("signin-form").onsubmit = (event) => {
  event.preventDefault();
  state.token = document.getElementById("token").value.trim();
  sessionStorage.setItem("flower-token", state.token);
  start();
};

document.getElementById("launch-form").onsubmit = async (event) => {
  event.preventDefault();
  const body = formBody();
  body.reason = document.getElementById("bf-reason").value.trim();
  const r = await api("POST", "/api/backfills", body);
  if (r.status === 201 || r.status === 200) {
    show((r.data.already_running ? "Already running, not launched again: backfill " :
          "Launched backfill ") + r.data.id + ": " + r.data.model + " " + r.data.from + " to " +
         r.data.to + " (" + r.data.partitions + " partitions)", true);
  } else {
    show((r.data.field ? r.data.field + ": " : "") + describe(r.data), false);
  }
  showCheck(r.data);
  loadBackfills();
};

start();
</script>
</body>
</html>
"""
