// The queue dashboard: a client of the server's own ACI actions.
// Every value from the server is shown with textContent, never as markup.
"use strict";

(function () {
  const POLL_MS = 2000;
  // The roles are read again every PERMISSION_POLLS refreshes (30 s),
  // and at the first refresh after one that failed: a server restarted
  // with other roles, or another node behind a load balancer, may grant
  // other actions, and a read that failed (the server restarting) left
  // the page read-only.
  const PERMISSION_POLLS = 15;
  const QUEUE = "fetch";
  const STATES = ["All", "Queued", "Processing", "Paused", "Finished", "Cancelled", "Stopped", "Error"];
  const state = { tab: "All", start: 1, admin: false, bulk: false, counts: {}, paused: false, polls: 0, busy: false, again: false, drafts: {}, limit: 0, started: null, version: false, permsRead: false, permsPoll: 0 };
  // The message line: each click's reply is numbered (seq), and one that
  // arrives after a later click's reply was shown does not replace it,
  // unless it is an error; a refresh's error (fromPoll) goes once a
  // refresh works again.
  const msg = { next: 0, shown: 0, fromPoll: false };

  const $ = (id) => document.getElementById(id);
  const el = (tag, text, cls) => {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  };
  const arr = (v) => (v === undefined || v === null || v === "" ? [] : Array.isArray(v) ? v : [v]);

  // aci sends one ACI request (GET, same origin) and returns responsedata,
  // or throws an Error whose message is the server's errorstring and
  // errordescription, with its errorcode as code and errordescription as
  // description.
  async function aci(params) {
    const q = new URLSearchParams(params);
    q.set("ResponseFormat", "simplejson");
    const r = await fetch("/action=" + encodeURIComponent(params.action) + "&" + q.toString().replace(/(^|&)action=[^&]*/, ""), {
      credentials: "same-origin", cache: "no-store",
    });
    const body = await r.json();
    const ar = body.autnresponse || {};
    if (ar.response !== "SUCCESS") {
      const e = (ar.responsedata && ar.responsedata.error) || {};
      throw Object.assign(new Error((e.errorstring || "error") + ": " + (e.errordescription || "")),
        { code: e.errorcode || "", description: e.errordescription || "" });
    }
    return ar.responsedata || {};
  }

  // say shows text; seq is the number of the click it answers (none: a
  // refresh's).
  function say(text, isError, seq) {
    if (seq !== undefined) {
      if (seq < msg.shown && !isError) return;
      msg.shown = Math.max(msg.shown, seq);
    }
    msg.fromPoll = seq === undefined && !!isError;
    const m = $("message");
    m.textContent = text || "";
    m.className = isError ? "error" : "";
  }

  // pageSize is the rows per page chosen, or the server's limit on a
  // listing when that is smaller (learnt from its refusal: limit).
  function pageSize() {
    const per = Number($("per-page").value);
    return state.limit > 0 && state.limit < per ? state.limit : per;
  }

  // limitIn reads the server's limit from its refusal of a MaxResults over
  // [Actions] MaxListResults (ERRORPARAMINVALID naming the limit); 0 for
  // any other error.
  function limitIn(e) {
    const m = /\bparameter MaxResults: a reply lists at most (\d+) actions/.exec(e.description || "");
    return e.code === "ERRORPARAMINVALID" && m ? Number(m[1]) : 0;
  }

  // started reads when the server started (GetVersion, a Query action
  // as the listing is), in Unix seconds (its clock less its uptime: to a
  // second either way), or null. Roles that do not allow GetVersion are
  // not sent it: each refusal would be logged.
  async function started() {
    if (!state.version) return null;
    try {
      const d = await aci({ action: "GetVersion" });
      const at = Number(d.servertime && d.servertime.epoch) - Number(d.uptime && d.uptime.seconds);
      return Number.isFinite(at) ? at : null;
    } catch (e) {
      return null;
    }
  }

  // forgetLimitOnRestart drops the limit learnt once the server restarted
  // (it started later than it had), with the limit of its new
  // configuration maybe larger: the next listing asks for the page size
  // chosen again, and learns the new limit if it is smaller. Only a later
  // start counts: behind a load balancer that alternates cluster nodes,
  // the page does not drop the limit at every other refresh. The server
  // is asked only while its limit makes the pages smaller.
  async function forgetLimitOnRestart() {
    if (!(state.limit > 0 && state.limit < Number($("per-page").value))) return;
    const now = await started();
    if (now !== null && state.started !== null && now > state.started + 1) state.limit = 0;
    noteStart(now);
  }

  // noteStart keeps the latest start of the server seen (null: none read).
  function noteStart(at) {
    if (at !== null) state.started = state.started === null ? at : Math.max(state.started, at);
  }

  async function permissions() {
    state.permsPoll = state.polls;
    try {
      const d = await aci({ action: "ShowPermissions" });
      const perms = arr(d.permissions && d.permissions.permission);
      const can = (qa) => perms.some((p) => p["@action"] === "QueueInfo" && p["@queueaction"] === qa && p["@allowed"] === "true");
      state.admin = can("Cancel") && can("Stop") && can("Pause");
      state.bulk = can("CancelQueued");
      state.version = perms.some((p) => p["@action"] === "GetVersion" && p["@allowed"] === "true");
      $("mode").textContent = state.admin ? "admin" : "read-only (your roles do not include Admin)";
      document.body.classList.toggle("admin", state.admin);
      state.permsRead = true;
    } catch (e) {
      state.permsRead = false;
      state.admin = false;
      document.body.classList.remove("admin");
      state.version = false;
      $("mode").textContent = "read-only";
    }
  }

  function renderTabs() {
    const nav = $("tabs");
    nav.replaceChildren();
    for (const s of STATES) {
      const n = s === "All" ? Object.values(state.counts).reduce((a, b) => a + b, 0) : state.counts[s.toLowerCase()] || 0;
      const b = el("button", s + " (" + n + ")", s === state.tab ? "tab active" : "tab");
      b.type = "button";
      b.dataset.state = s;
      b.addEventListener("click", () => { state.tab = s; state.start = 1; refresh(); });
      nav.append(b);
    }
  }

  function renderQueue(q) {
    state.paused = q.paused === "true";
    const st = q.states || {};
    state.counts = {};
    for (const s of STATES.slice(1)) state.counts[s.toLowerCase()] = Number(st[s.toLowerCase()] || 0);
    $("queue-name").textContent = q.name || QUEUE;
    $("queue-state").textContent = (state.paused ? "Paused" : "Running") + " · threads " + (q.maximum_threads || "?") +
      " · queue limit " + (q.maximum_queue_size || "?");
    const c = $("queue-controls");
    c.replaceChildren();
    if (state.admin) {
      const b = button(state.paused ? "Resume queue" : "Pause queue", state.paused ? "queue-resume" : "queue-pause",
        () => control({ QueueAction: state.paused ? "Resume" : "Pause" }, state.paused ? "Queue resumed" : "Queue paused"));
      c.append(b);
    }
    renderTabs();
  }

  function button(label, cls, onclick) {
    const b = el("button", label, cls);
    b.type = "button";
    b.addEventListener("click", onclick);
    return b;
  }

  async function control(params, done) {
    const seq = ++msg.next;
    try {
      const d = await aci(Object.assign({ action: "QueueInfo", QueueName: QUEUE }, params));
      let text = done;
      if (d.token) text += ": new token " + d.token;
      if (d.cancelqueued) text += ": " + d.cancelqueued.cancelled + " cancelled";
      if (params.QueueAction === "ChangePriority") delete state.drafts[params.Token];
      say(text, false, seq);
    } catch (e) {
      say(e.message, true, seq);
    }
    refresh();
  }

  function counts(a) {
    const parts = [];
    for (const dc of arr(a.documentcounts && a.documentcounts.documentcount)) {
      const kv = [];
      for (const [k, v] of Object.entries(dc)) {
        if (k !== "@task" && k.startsWith("@") && v !== "0") kv.push(k.slice(1) + " " + v);
      }
      parts.push(kv.length ? kv.join(", ") : "none");
    }
    return parts.join("; ");
  }

  // isToken says whether text is an action's token: base64 (standard or
  // URL-safe, padded or not) of HOST:PORT:QUEUE:ID, ID a UUID. Any other
  // text, a long task name included, is searched for in the page.
  function isToken(text) {
    if (!/^[A-Za-z0-9+/_-]{24,}={0,2}$/.test(text)) return false;
    let b = text.replace(/=+$/, "").replace(/-/g, "+").replace(/_/g, "/");
    b += "=".repeat((4 - (b.length % 4)) % 4);
    try {
      return /:\d+:[^:]+:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(atob(b));
    } catch (e) {
      return false;
    }
  }

  // when shows a queue time; the epoch stands for "not yet".
  function when(v) {
    return !v || v.startsWith("1970-") ? "–" : v;
  }

  function tasks(a) {
    return arr(a.documentcounts && a.documentcounts.documentcount).map((dc) => dc["@task"]).filter(Boolean).join(", ");
  }

  function progressText(a, p) {
    if (p) return (p.percent !== undefined ? p.percent + "% " : "") + (p.stage || "");
    switch (a.status) {
      case "Queued": return "queued";
      case "Finished": return "100%";
      default: return "";
    }
  }

  function rowButtons(a) {
    const td = el("td", null, "actions-col");
    if (!state.admin) return td;
    const tok = a.token;
    const s = a.status;
    if (s === "Queued") td.append(button("Cancel", "act-cancel", () => control({ QueueAction: "Cancel", Token: tok }, "Cancelled")));
    if (s === "Processing" || s === "Paused" || s === "Queued") td.append(button("Stop", "act-stop", () => control({ QueueAction: "Stop", Token: tok }, "Stopped")));
    if (s === "Processing" || s === "Queued") td.append(button("Pause", "act-pause", () => control({ QueueAction: "Pause", Token: tok }, "Paused")));
    if (s === "Paused") td.append(button("Resume", "act-resume", () => control({ QueueAction: "Resume", Token: tok }, "Resumed")));
    if (s === "Queued") {
      const inp = el("input", null, "prio");
      inp.type = "number";
      // What the user typed stays until it is set: the table is rebuilt
      // at every refresh.
      inp.value = state.drafts[tok] !== undefined ? state.drafts[tok] : a.priority || "0";
      inp.setAttribute("aria-label", "Priority");
      inp.addEventListener("input", () => { state.drafts[tok] = inp.value; });
      td.append(inp, button("Set priority", "act-priority", () => control({ QueueAction: "ChangePriority", Token: tok, Priority: inp.value }, "Priority changed")));
    }
    if (s === "Queued" || s === "Processing" || s === "Paused") td.append(button("Duplicate", "act-duplicate", () => control({ QueueAction: "Duplicate", Token: tok }, "Duplicated")));
    return td;
  }

  function renderRows(list, progress) {
    const tbody = $("actions").tBodies[0];
    // Not under the cursor of a user typing a priority: the rows wait
    // for the next refresh after the field loses the focus.
    const f = document.activeElement;
    if (f && f.classList.contains("prio") && tbody.contains(f)) return;
    tbody.replaceChildren();
    for (const a of list) {
      const tr = el("tr");
      tr.dataset.token = a.token || "";
      tr.dataset.status = a.status || "";
      const tok = a.token || "";
      const cells = [
        [tok.length > 16 ? "…" + tok.slice(-16) : tok, "token"], [a.fetchaction], [tasks(a), "task"], [a.status, "status"], [a.priority],
        [when(a.queued_time)], [when(a.process_start_time)], [when(a.process_end_time)], [a.time_in_queue], [a.time_processing],
        [counts(a)], [progressText(a, progress[a.token])],
      ];
      for (const [v, cls] of cells) tr.append(el("td", v, cls));
      tr.firstChild.title = tok;
      tr.append(rowButtons(a));
      tbody.append(tr);
    }
    if (list.length === 0) {
      const tr = el("tr");
      const td = el("td", "No actions", "empty");
      td.colSpan = 13;
      tr.append(td);
      tbody.append(tr);
    }
  }

  function renderBulk() {
    const b = $("bulk");
    b.replaceChildren();
    if (state.admin && state.bulk && (state.counts.queued || 0) > 0 && (state.tab === "All" || state.tab === "Queued")) {
      b.append(button("Cancel every queued action", "bulk-cancel", () => {
        if (window.confirm("Cancel all " + state.counts.queued + " queued actions?")) {
          control({ QueueAction: "CancelQueued", State: "Queued", Confirm: "true" }, "Queued actions cancelled");
        }
      }));
    }
  }

  // refresh reads the queue and the page, and shows them. One runs at a
  // time: asked for while one is under way (a click's, during a poll),
  // it runs again once that ends, since what that one read may predate
  // the click.
  async function refresh() {
    if (state.busy) {
      state.again = true;
      return;
    }
    state.busy = true;
    state.again = false;
    try {
      if (!state.permsRead || state.polls - state.permsPoll >= PERMISSION_POLLS) await permissions();
      const qs = await aci({ action: "QueueInfo", QueueName: QUEUE, QueueAction: "QueueStatus" });
      renderQueue(qs.queue || {});
      await forgetLimitOnRestart();
      const search = $("search").value.trim();
      const params = { action: "QueueInfo", QueueName: QUEUE, QueueAction: "GetStatus" };
      const tokenLike = isToken(search);
      if (tokenLike) {
        params.Token = search;
      } else {
        params.Start = String(state.start);
        params.MaxResults = String(pageSize());
        if (state.tab !== "All") params.State = state.tab;
      }
      let list = [];
      let failed = false;
      try {
        let d;
        try {
          d = await aci(params);
        } catch (e) {
          // A page over the server's limit: pages of the limit from now on.
          const limit = tokenLike ? 0 : limitIn(e);
          if (!(limit > 0 && limit < Number(params.MaxResults))) throw e;
          state.limit = limit;
          noteStart(await started());
          params.MaxResults = String(pageSize());
          d = await aci(params);
        }
        list = arr(d.actions && d.actions.action);
      } catch (e) {
        if (!tokenLike) throw e;
        say(e.message, true);
        failed = true;
      }
      // Next goes by the page the server gave, not by what the search
      // left of it: a later page may hold what is searched for.
      const full = list.length >= Number(params.MaxResults);
      if (search && !tokenLike) {
        const s = search.toLowerCase();
        list = list.filter((a) => (a.fetchaction || "").toLowerCase().includes(s) || tasks(a).toLowerCase().includes(s) ||
          (a.token || "").toLowerCase().includes(s));
      }
      const progress = {};
      await Promise.all(list.filter((a) => a.status === "Processing" || a.status === "Paused").map(async (a) => {
        try {
          const p = await aci({ action: "QueueInfo", QueueName: QUEUE, QueueAction: "Progress", Token: a.token });
          const first = arr(p.actions && p.actions.action)[0];
          if (first && first.progress) progress[a.token] = first.progress;
        } catch (e) { /* ended meanwhile */ }
      }));
      renderRows(list, progress);
      renderBulk();
      $("page-info").textContent = tokenLike ? "token" : "from " + state.start +
        (pageSize() < Number($("per-page").value) ? " (" + pageSize() + " per page: the server's limit)" : "");
      $("prev").disabled = tokenLike || state.start <= 1;
      $("next").disabled = tokenLike || !full;
      if (!failed && msg.fromPoll) say("", false);
      state.polls++;
      document.body.dataset.polls = String(state.polls);
      $("updated").textContent = new Date().toLocaleTimeString();
    } catch (e) {
      state.permsRead = false; // read again once the server answers
      say(e.message, true);
    } finally {
      state.busy = false;
      if (state.again) refresh();
    }
  }

  function start() {
    $("search-form").addEventListener("submit", (e) => { e.preventDefault(); state.start = 1; refresh(); });
    $("search").addEventListener("input", () => { state.start = 1; refresh(); });
    $("per-page").addEventListener("change", () => { state.start = 1; refresh(); });
    $("prev").addEventListener("click", () => { state.start = Math.max(1, state.start - pageSize()); refresh(); });
    $("next").addEventListener("click", () => { state.start += pageSize(); refresh(); });
    permissions().then(refresh);
    setInterval(() => { if (!document.hidden) refresh(); }, POLL_MS);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
