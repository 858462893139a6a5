// Reporting > User Usage: how the page asks for a view, and what it does when that fails.
// The server renders everything; this file only adds behaviour (CSP: no inline JS).
//
// The filters form is the one state of the view: search, dates, zone, sort, page and
// page size are its fields. Every change sets them, then asks for the results with
// `apply`, through the form's htmx request (`hx-sync="this:replace"`): one request in
// flight per view, and a newer one cancels the older. Export reads the same fields at
// the moment of the click, so it always downloads what the view asks for.
(function () {
  "use strict";

  var PATH = "/reporting/user-usage";
  var REPORT_API = "/api/v1/reports/user-usage";
  var EXPORT_API = "/api/v1/reports/user-usage/export";
  var VIEW_FIELDS = ["q", "start", "end", "tz", "sort", "page", "per_page", "team", "department", "group", "compare", "over"];
  var DEFAULTS = { sort: "-total_tokens", page: "1", per_page: "50" };
  var BOM_KEY = "tokenledger.exportBom";
  var RETRY_EVERY_MS = 4000;

  if (!document.getElementById("usage-filters")) return;

  var locale = navigator.language || "en-US";
  var numberFormat = new Intl.NumberFormat(locale);
  var compactFormat = new Intl.NumberFormat(locale, { notation: "compact", maximumFractionDigits: 1 });
  var clockFormat = new Intl.DateTimeFormat(locale, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  var chart = null;
  var heat = null; // {"YYYY-MM-DD": level 1-4}
  var heatKey = null;

  function el(id) { return document.getElementById(id); }
  function form() { return el("usage-filters"); }
  function state() { return el("usage-state").dataset; }

  // -- Plain dates (YYYY-MM-DD) without time zone surprises -------------------------
  function parseDay(text) {
    var parts = text.split("-").map(Number);
    return new Date(Date.UTC(parts[0], parts[1] - 1, parts[2]));
  }
  function formatDay(date) { return date.toISOString().slice(0, 10); }
  function addDays(text, days) {
    var date = parseDay(text);
    date.setUTCDate(date.getUTCDate() + days);
    return formatDay(date);
  }
  function monthStart(text, monthsBack) {
    var date = parseDay(text);
    return formatDay(new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() - monthsBack, 1)));
  }
  function monthEnd(text, monthsBack) {
    var date = parseDay(text);
    return formatDay(new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() - monthsBack + 1, 0)));
  }
  function dayLabel(text) {
    return new Intl.DateTimeFormat(locale, { month: "short", day: "numeric", timeZone: "UTC" }).format(parseDay(text));
  }

  function presetRange(name, today) {
    switch (name) {
      case "today": return [today, today];
      case "yesterday": return [addDays(today, -1), addDays(today, -1)];
      case "last7": return [addDays(today, -6), today];
      case "last30": return [addDays(today, -29), today];
      case "this-month": return [monthStart(today, 0), today];
      case "last-month": return [monthStart(today, 1), monthEnd(today, 1)];
    }
    return null;
  }

  // -- Asking for a view ---------------------------------------------------------------
  // What the next request does once its answer is shown: how the URL changes ("push" a
  // history entry, or "replace" the current one), what gets the focus, where to scroll.
  var pending = null;
  var current = null; // the options of the request in flight
  var inFlight = false;
  var typing = false; // a run of keystrokes in the search box...
  var typingEntry = false; // ...has pushed its one history entry
  var typingTimer = null;
  var lastQ = null;

  function setField(name, value) {
    var input = form().querySelector('input[type="hidden"][name="' + name + '"]');
    if (input) input.value = value;
  }

  function apply(changes, options) {
    changes = changes || {};
    Object.keys(changes).forEach(function (name) { setField(name, changes[name]); });
    if (!("page" in changes)) setField("page", "1");
    clearTimeout(typingTimer);
    pending = Object.assign({ history: "push", focus: null, scrollToTable: false }, options || {});
    if (pending.history === "push") typing = typingEntry = false;
    lastQ = el("usage-search").value;
    htmx.trigger(form(), "tl:apply");
  }

  function searchTyped() {
    var value = el("usage-search").value;
    if (value === lastQ) return;
    typing = true;
    apply({}, { history: "typing" });
  }

  // Only the view's own fields go into the URL, without empty values and defaults.
  function viewParams(data) {
    var params = new URLSearchParams();
    VIEW_FIELDS.forEach(function (name) {
      var value = data.get(name);
      if (value === null || value === "" || DEFAULTS[name] === value) return;
      params.set(name, value);
    });
    return params;
  }

  document.body.addEventListener("htmx:configRequest", function (event) {
    if (event.detail.elt !== form()) return;
    var parameters = event.detail.parameters;
    var data = new URLSearchParams();
    VIEW_FIELDS.forEach(function (name) { if (parameters[name] !== undefined) data.set(name, parameters[name]); });
    var wanted = viewParams(data);
    Object.keys(parameters).forEach(function (name) { delete parameters[name]; });
    wanted.forEach(function (value, name) { parameters[name] = value; });
    event.detail.path = PATH; // never a submit button's formaction
    current = pending || { history: "push", focus: null, scrollToTable: false };
    pending = null;
  });

  // Typing pushes one entry for the search, then replaces it at each letter.
  document.body.addEventListener("htmx:beforeHistoryUpdate", function (event) {
    if (event.detail.requestConfig.elt !== form() || !current) return;
    var type = current.history;
    if (type === "typing") {
      type = typingEntry ? "replace" : "push";
      typingEntry = true;
    }
    event.detail.history.type = type;
  });

  // -- Failures: shown on the results, retried, and cleared when the server answers ------
  var failures = {}; // kind -> {message, retry}
  var retryTimer = null;
  var lastShownAt = new Date();

  function describe(status, body) {
    if (!status) return "The server cannot be reached (stopped, restarting, or the network is down).";
    var detail = "";
    try {
      var parsed = JSON.parse(body);
      if (parsed && parsed.error && parsed.error.message) detail = ": " + parsed.error.message;
    } catch (ignored) { /* an HTML or empty answer */ }
    return "The server answered " + status + detail + ".";
  }

  function showFailures() {
    var banner = el("usage-failure");
    var kinds = Object.keys(failures);
    var results = el("usage-results");
    var stale = el("usage-stale");
    if (!kinds.length) {
      banner.hidden = true;
      stale.hidden = true;
      results.classList.remove("is-stale");
      clearInterval(retryTimer);
      retryTimer = null;
      return;
    }
    var latest = failures[kinds[kinds.length - 1]];
    el("usage-failure-title").textContent = latest.title;
    el("usage-failure-detail").textContent = latest.message + (latest.automatic ? " Trying again by itself every few seconds." : "");
    banner.hidden = false;
    var resultsFailed = "results" in failures;
    results.classList.toggle("is-stale", resultsFailed);
    stale.hidden = !resultsFailed;
    el("usage-stale-text").textContent = "Out of date: the figures below were loaded at " +
      clockFormat.format(lastShownAt) + " and do not match the filters above.";
    if (!retryTimer && kinds.some(function (kind) { return failures[kind].automatic; })) {
      retryTimer = setInterval(function () { retry(true); }, RETRY_EVERY_MS);
    }
  }

  function fail(kind, title, message, retryWith, automatic) {
    delete failures[kind];
    failures[kind] = { title: title, message: message, retry: retryWith, automatic: automatic !== false };
    showFailures();
  }

  function recovered(kind) {
    if (!(kind in failures)) return;
    delete failures[kind];
    showFailures();
  }

  function retry(automatic) {
    if (automatic && (inFlight || document.hidden)) return; // a slow answer is not cut short
    Object.keys(failures).forEach(function (kind) {
      var failure = failures[kind];
      if (!automatic || failure.automatic) failure.retry();
    });
  }

  function retryResults() {
    var options = current || {};
    apply({ page: form().querySelector('input[name="page"]').value }, {
      history: options.history || "push",
      focus: null,
      scrollToTable: options.scrollToTable,
    });
  }

  function resultsFailed(event) {
    if (event.detail.elt !== form()) return;
    var xhr = event.detail.xhr;
    var status = event.type === "htmx:sendError" || event.type === "htmx:timeout" ? 0 : xhr.status;
    fail("results", "Could not update the results.", describe(status, xhr.responseText), retryResults);
  }
  document.body.addEventListener("htmx:sendError", resultsFailed);
  document.body.addEventListener("htmx:timeout", resultsFailed);
  document.body.addEventListener("htmx:responseError", resultsFailed);

  // -- Export: the form's state at the moment of the click --------------------------------
  function exportUrls(submitter) {
    var data = new FormData(form(), submitter);
    var params = new URLSearchParams();
    ["start", "end", "tz", "q", "sort", "team", "department"].forEach(function (name) {
      var value = data.get(name);
      if (value) params.set(name, value);
    });
    var check = new URLSearchParams(params);
    check.set("limit", "1");
    params.set("granularity", data.get("granularity") || "summary");
    if (data.get("granularity") === "teams" && data.get("group")) params.set("by", data.get("group"));
    if (data.get("bom")) params.set("bom", "true");
    return { download: EXPORT_API + "?" + params, check: REPORT_API + "?" + check };
  }

  // The download itself cannot report a failure to the page, so the same filters are
  // first checked with a one-row report (same validation, same database).
  function startExport(urls) {
    fetch(urls.check, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          return response.text().then(function (body) { throw { status: response.status, body: body }; });
        }
        var link = document.createElement("a");
        link.href = urls.download;
        link.download = "";
        link.hidden = true;
        document.body.appendChild(link);
        link.click();
        link.remove();
        recovered("export");
      })
      .catch(function (error) {
        fail("export", "Could not start the export; nothing was downloaded.",
          describe(error && error.status, error && error.body), function () { startExport(urls); }, false);
      });
  }

  // The team and department filters apply as soon as one is chosen.
  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches("select[data-filter]")) apply({}, { history: "push" });
  });

  document.addEventListener("submit", function (event) {
    if (event.target !== form()) return;
    event.preventDefault();
    var submitter = event.submitter;
    if (submitter && submitter.hasAttribute("data-export")) {
      var urls = exportUrls(submitter);
      el("export-menu").removeAttribute("open");
      startExport(urls);
    } else {
      apply({}, { history: "push" });
    }
  });

  // -- Locale formatting of server-rendered numbers and times ---------------------
  function formatNumbers(root) {
    root.querySelectorAll("[data-num]").forEach(function (element) {
      var value = Number(element.dataset.num);
      if (!Number.isFinite(value)) return;
      var compact = element.hasAttribute("data-compact") && Math.abs(value) >= 100000;
      element.textContent = compact ? compactFormat.format(value) : numberFormat.format(value);
      if (compact) element.title = numberFormat.format(value);
    });
    var zone = state().tz;
    var timeFormat = new Intl.DateTimeFormat(locale, {
      month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", timeZone: zone,
    });
    root.querySelectorAll("time[data-time]").forEach(function (element) {
      var micros = Number(element.dataset.time);
      var date = new Date(micros / 1000);
      element.dateTime = date.toISOString();
      element.textContent = timeFormat.format(date);
    });
  }

  // -- Chart ----------------------------------------------------------------------
  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function renderChart() {
    var canvas = el("usage-chart");
    if (!canvas || typeof Chart === "undefined") return;
    var url = canvas.dataset.seriesUrl;
    var box = canvas.parentElement;
    box.classList.add("is-loading");
    box.classList.remove("has-error");
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) {
          return response.text().then(function (body) { throw { status: response.status, body: body }; });
        }
        return response.json();
      })
      .then(function (series) {
        recovered("chart");
        if (!document.body.contains(canvas)) return;
        drawChart(canvas, series);
      })
      .catch(function (error) {
        box.classList.add("has-error");
        fail("chart", "Could not load the chart.", describe(error && error.status, error && error.body), renderChart);
      })
      .finally(function () {
        box.classList.remove("is-loading");
      });
  }

  // Money for reading: cents, or two significant digits under a cent (the exact
  // decimal string stays in the API and exports).
  var centsFormat = new Intl.NumberFormat(locale, { style: "currency", currency: "USD" });
  var smallMoneyFormat = new Intl.NumberFormat(locale, {
    style: "currency", currency: "USD", maximumSignificantDigits: 2,
  });
  function money(decimalText) {
    var value = Number(decimalText);
    return (value > 0 && value < 0.01 ? smallMoneyFormat : centsFormat).format(value);
  }

  function costLine(point) {
    if (point.unpriced_requests && point.unpriced_requests === point.requests) {
      return "Cost: unknown (" + numberFormat.format(point.unpriced_requests) + " unpriced)";
    }
    var line = "Cost: " + money(point.cost_usd);
    if (point.unpriced_requests) line += " + " + numberFormat.format(point.unpriced_requests) + " unpriced";
    return line;
  }

  function drawChart(canvas, series) {
    var hourly = series.interval === "hour";
    var labelFormat = new Intl.DateTimeFormat(locale, hourly
      ? { hour: "2-digit", minute: "2-digit", timeZone: series.tz }
      : { month: "short", day: "numeric", timeZone: series.tz });
    var labels = series.points.map(function (point) { return labelFormat.format(new Date(point.start)); });
    if (chart) chart.destroy();
    chart = new Chart(canvas, {
      type: "bar",
      data: {
        labels: labels,
        datasets: [
          { label: "Input tokens", data: series.points.map(function (p) { return p.input_tokens; }),
            backgroundColor: cssVar("--heat-4"), stack: "tokens", borderRadius: 3 },
          { label: "Output tokens", data: series.points.map(function (p) { return p.output_tokens; }),
            backgroundColor: cssVar("--heat-2"), stack: "tokens", borderRadius: 3 },
        ],
      },
      options: {
        responsive: true,
        maintainAspectRatio: false,
        animation: false,
        interaction: { mode: "index", intersect: false },
        plugins: {
          legend: { position: "bottom", labels: { color: cssVar("--text-muted"), boxWidth: 12 } },
          tooltip: {
            callbacks: {
              label: function (item) { return item.dataset.label + ": " + numberFormat.format(item.raw); },
              footer: function (items) {
                var total = items.reduce(function (sum, item) { return sum + item.raw; }, 0);
                var point = items.length ? series.points[items[0].dataIndex] : null;
                var lines = ["Total: " + numberFormat.format(total)];
                if (point) lines.push(costLine(point));
                return lines;
              },
            },
          },
        },
        scales: {
          x: { stacked: true, grid: { display: false }, ticks: { color: cssVar("--text-muted"), maxRotation: 0, autoSkipPadding: 12 } },
          y: { stacked: true, beginAtZero: true, grid: { color: cssVar("--border") },
               ticks: { color: cssVar("--text-muted"), callback: function (value) { return compactFormat.format(value); } } },
        },
      },
    });
    canvas.dataset.points = String(series.points.length);
    canvas.dataset.cost = series.points.map(function (p) { return p.cost_usd; }).join(" ");
    canvas.dataset.total = String(series.points.reduce(function (sum, p) { return sum + p.total_tokens; }, 0));
  }

  // -- Calendar popover and heat map ------------------------------------------------
  // Listeners are delegated to the document: htmx history restores replace the page's
  // elements, and delegation keeps working without binding anything twice.
  var tentative = null; // the first day picked, before Apply or a second day

  // The calendar keeps its month pages aligned to where it was first shown, so a
  // fresh one is built at each opening, first shown at the month before the range's
  // end (past days are what one picks), then focused on the end day itself.
  function buildCalendar() {
    var now = state();
    var old = el("range-calendar");
    var months = window.matchMedia("(max-width: 640px)").matches ? 1 : 2;
    var calendar = document.createElement("calendar-range");
    calendar.id = "range-calendar";
    calendar.setAttribute("months", String(months));
    calendar.setAttribute("value", now.start + "/" + now.end);
    calendar.setAttribute("max", now.today);
    calendar.setAttribute("today", now.today);
    calendar.setAttribute("first-day-of-week", "1");
    calendar.setAttribute("locale", locale);
    calendar.setAttribute("focused-date", months > 1 ? monthStart(now.end, 1) : now.end);
    while (old.firstChild) calendar.appendChild(old.firstChild);
    old.replaceWith(calendar);
    applyHeat();
    setTentative(null);
    Promise.resolve(calendar.mounted).then(function () {
      setTimeout(function () {
        calendar.focusedDate = now.end;
        if (popoverOpen() && typeof calendar.focus === "function") calendar.focus();
        placePopover();
      }, 30);
    });
    el("range-popover").querySelectorAll("[data-preset]").forEach(function (preset) {
      var range = presetRange(preset.dataset.preset, now.today);
      var active = range && range[0] === now.start && range[1] === now.end;
      preset.setAttribute("aria-pressed", active ? "true" : "false");
    });
  }

  function setTentative(day) {
    tentative = day;
    el("range-apply").setAttribute("aria-disabled", day ? "false" : "true");
    el("range-hint").textContent = day
      ? dayLabel(day) + " picked: Apply for that day, or pick a last day."
      : "Pick a day and Apply, or pick a first and a last day.";
  }

  function applyHeat() {
    var calendar = el("range-calendar");
    if (!heat || !calendar) return;
    calendar.getDayParts = function (date) {
      var level = heat[formatDay(date)];
      return level ? "heat heat-" + level : "";
    };
    calendar.dataset.heatDays = String(Object.keys(heat).length);
  }

  function loadHeat() {
    var now = state();
    var key = now.tz + "|" + now.today;
    if (heatKey === key) { applyHeat(); return; }
    heatKey = key;
    var params = new URLSearchParams({
      start: addDays(now.today, -400), end: now.today, tz: now.tz, interval: "day",
    });
    fetch("/api/v1/reports/usage-series?" + params, { credentials: "same-origin" })
      .then(function (response) {
        if (!response.ok) {
          return response.text().then(function (body) { throw { status: response.status, body: body }; });
        }
        return response.json();
      })
      .then(function (series) {
        recovered("heat");
        var values = series.points.map(function (p) { return p.total_tokens; }).filter(function (v) { return v > 0; });
        values.sort(function (a, b) { return a - b; });
        function quantile(q) { return values.length ? values[Math.floor(q * (values.length - 1))] : 0; }
        var cuts = [quantile(0.25), quantile(0.5), quantile(0.75)];
        heat = {};
        series.points.forEach(function (point) {
          var value = point.total_tokens;
          if (!value) return;
          heat[point.start.slice(0, 10)] = value <= cuts[0] ? 1 : value <= cuts[1] ? 2 : value <= cuts[2] ? 3 : 4;
        });
        applyHeat();
      })
      .catch(function (error) {
        heatKey = null;
        fail("heat", "Could not load the calendar's usage shading.", describe(error && error.status, error && error.body),
          function () { if (popoverOpen()) loadHeat(); else recovered("heat"); });
      });
  }

  function popoverOpen() {
    var popover = el("range-popover");
    return popover && !popover.hidden;
  }

  // Fixed to the viewport, below the sticky top bar and the button, never taller than
  // the space left (it scrolls inside instead): at 200% zoom nothing is out of reach.
  function placePopover() {
    if (!popoverOpen()) return;
    var popover = el("range-popover");
    var button = el("range-button").getBoundingClientRect();
    var bar = document.querySelector(".topbar");
    var barBottom = bar ? Math.max(0, bar.getBoundingClientRect().bottom) : 0;
    var margin = 8;
    popover.style.maxHeight = "";
    popover.style.maxWidth = (window.innerWidth - 2 * margin) + "px";
    var width = popover.offsetWidth;
    var height = popover.scrollHeight;
    var top = Math.max(button.bottom + margin, barBottom + margin);
    if (top + Math.min(height, 200) > window.innerHeight - margin) {
      top = Math.max(barBottom + margin, window.innerHeight - margin - height);
    }
    var left = Math.min(Math.max(margin, button.right - width), window.innerWidth - margin - width);
    popover.style.top = top + "px";
    popover.style.left = Math.max(margin, left) + "px";
    popover.style.maxHeight = (window.innerHeight - top - margin) + "px";
  }

  // Short of room below the button (a small window, or zoomed in): scroll the page so
  // the button sits just under the sticky bar, and the popover gets the rest.
  function makeRoomBelow() {
    var popover = el("range-popover");
    var button = el("range-button").getBoundingClientRect();
    var bar = document.querySelector(".topbar");
    var barBottom = bar ? Math.max(0, bar.getBoundingClientRect().bottom) : 0;
    var wanted = Math.min(popover.scrollHeight, 360);
    if (window.innerHeight - button.bottom - 16 < wanted) {
      window.scrollBy({ top: button.top - barBottom - 8, behavior: "instant" });
    }
  }

  function openPopover() {
    el("range-popover").hidden = false;
    buildCalendar();
    loadHeat();
    makeRoomBelow();
    placePopover();
    el("range-button").setAttribute("aria-expanded", "true");
  }
  function closePopover(returnFocus) {
    if (!popoverOpen()) return;
    el("range-popover").hidden = true;
    el("range-button").setAttribute("aria-expanded", "false");
    setTentative(null);
    if (returnFocus) el("range-button").focus();
  }
  function applyRange(start, end) {
    closePopover(true);
    apply({ start: start, end: end });
  }

  window.addEventListener("resize", placePopover);
  window.addEventListener("scroll", placePopover, { passive: true });

  document.addEventListener("click", function (event) {
    var target = event.target;
    if (target.closest("#range-button")) {
      if (popoverOpen()) closePopover(true); else openPopover();
      return;
    }
    var preset = target.closest("#range-popover [data-preset]");
    if (preset) {
      var range = presetRange(preset.dataset.preset, state().today);
      if (range) applyRange(range[0], range[1]);
      return;
    }
    if (target.closest("#range-apply")) {
      if (tentative) applyRange(tentative, tentative);
      return;
    }
    if (popoverOpen() && !target.closest("#range-popover")) closePopover(false);
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape" && popoverOpen()) {
      event.preventDefault();
      closePopover(true);
    }
  });
  // Focus that leaves the popover (Tab past its end, or into the page) closes it.
  document.addEventListener("focusout", function (event) {
    var popover = el("range-popover");
    if (!popoverOpen() || !popover.contains(event.target)) return;
    setTimeout(function () {
      var active = document.activeElement;
      if (!active || active === document.body || popover.contains(active)) return;
      if (active === el("range-button")) return;
      closePopover(false);
    }, 0);
  });
  // Capture phase: the calendar's events do not bubble.
  document.addEventListener("rangestart", function (event) {
    if (event.target.id === "range-calendar") setTentative(formatDay(event.detail));
  }, true);
  document.addEventListener("change", function (event) {
    var target = event.target;
    if (target.id === "range-calendar") {
      var parts = (target.value || "").split("/");
      if (parts.length === 2 && parts[0] && parts[1]) applyRange(parts[0], parts[1]);
    }
  }, true);

  // -- Sorting and paging: the same form, one request ---------------------------------
  document.addEventListener("click", function (event) {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
    var sortLink = event.target.closest("#usage-results a[data-sort-key]");
    if (sortLink) {
      event.preventDefault();
      var sort = new URL(sortLink.href, location.href).searchParams.get("sort");
      apply({ sort: sort }, { focus: 'a[data-sort-key="' + sortLink.dataset.sortKey + '"]' });
      return;
    }
    var pageLink = event.target.closest("#usage-results a[data-page]");
    if (pageLink) {
      event.preventDefault();
      apply({ page: pageLink.dataset.page }, {
        focus: 'a[rel="' + pageLink.getAttribute("rel") + '"]',
        focusFallback: "#page-jump",
        scrollToTable: true,
      });
    }
  });
  document.addEventListener("submit", function (event) {
    if (event.target.id !== "pager-jump") return;
    event.preventDefault();
    var jump = el("page-jump");
    var pages = Number(state().pages);
    var wanted = Math.min(Math.max(1, Math.floor(Number(jump.value)) || 1), pages);
    apply({ page: String(wanted), per_page: el("per-page").value }, { focus: "#page-jump", scrollToTable: true });
  });
  document.addEventListener("change", function (event) {
    if (event.target.id !== "per-page") return;
    apply({ per_page: event.target.value }, { focus: "#per-page", scrollToTable: true });
  });
  // The budget filter: only the people over a share of a budget now (from page 1).
  document.addEventListener("change", function (event) {
    if (event.target.id !== "usage-over") return;
    apply({}, { focus: "#usage-over" });
  });

  // -- Search: one history entry per search, not one per letter -------------------------
  document.addEventListener("input", function (event) {
    if (event.target.id !== "usage-search") return;
    clearTimeout(typingTimer);
    typingTimer = setTimeout(searchTyped, 200);
  });
  document.addEventListener("keydown", function (event) {
    if (event.target.id !== "usage-search" || event.key !== "Enter") return;
    event.preventDefault();
    var history = typingEntry ? "replace" : "push";
    if (event.target.value !== lastQ) apply({}, { history: history });
    typing = typingEntry = false; // the search is done: the next one gets its own entry
  });
  document.addEventListener("focusout", function (event) {
    if (event.target.id === "usage-search") typing = typingEntry = false;
  });

  // -- Time zone (the picker itself is zone_picker.js) ------------------------------------
  function rememberZone(zone) {
    document.cookie = "tl_tz=" + encodeURIComponent(zone) + "; path=/; max-age=31536000; SameSite=Lax";
  }
  function browserZone() {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  }

  var picker = null;

  function buildZonePicker() {
    var select = el("usage-tz");
    if (!select) return;
    picker = window.TokenLedgerZonePicker.build(select, {
      browserZone: browserZone(),
      onChoose: function (zone) {
        rememberZone(zone);
        apply({ tz: zone });
      },
    });
  }

  function adoptBrowserZone() {
    if (state().tzExplicit === "true") return;
    var zone = browserZone();
    if (!zone) return;
    rememberZone(zone);
    if (zone === state().tz || !picker || !picker.has(zone)) return;
    picker.set(zone);
    // Dates the URL did not name default to today in the browser's zone: drop the
    // server's defaults so it computes them again. Replace (not push) the history entry.
    var changes = { tz: zone, page: state().page };
    if (!new URLSearchParams(location.search).has("start")) {
      changes.start = "";
      changes.end = "";
    }
    apply(changes, { history: "replace" });
  }

  // -- After each answer ------------------------------------------------------------------
  function refresh() {
    formatNumbers(el("usage-results"));
    renderChart();
    var now = state();
    var search = el("usage-search");
    if (document.activeElement !== search && search.value !== now.q && !typing) search.value = now.q;
    if (picker) picker.set(now.tz);
  }

  document.body.addEventListener("htmx:beforeRequest", function (event) {
    if (event.detail.elt !== form()) return;
    inFlight = true;
    el("usage-results").setAttribute("aria-busy", "true");
  });
  document.body.addEventListener("htmx:afterRequest", function (event) {
    if (event.detail.elt !== form()) return;
    inFlight = false;
    el("usage-results").removeAttribute("aria-busy");
  });
  document.body.addEventListener("htmx:afterSettle", function (event) {
    if (!event.detail.target || event.detail.target.id !== "usage-results") return;
    lastShownAt = new Date();
    recovered("results");
    refresh();
    var options = current || {};
    if (options.scrollToTable) {
      var card = el("usage-table-card");
      var bar = document.querySelector(".topbar");
      if (card) {
        var offset = (bar ? bar.getBoundingClientRect().height : 0) + 12;
        window.scrollTo({ top: card.getBoundingClientRect().top + window.scrollY - offset, behavior: "instant" });
      }
    }
    if (options.focus) {
      var target = document.querySelector(options.focus) ||
        (options.focusFallback && document.querySelector(options.focusFallback));
      if (target) target.focus({ preventScroll: !!options.scrollToTable });
    }
  });
  // What the page's elements need once they exist (at load, and after a history
  // restore has put fresh ones in place).
  function enhance() {
    form().querySelector("[data-apply]").hidden = true;
    buildZonePicker();
    var bom = el("export-bom");
    try { bom.checked = localStorage.getItem(BOM_KEY) === "true"; } catch (ignored) { /* private mode */ }
    lastQ = el("usage-search").value;
    typing = false;
    pending = current = null;
  }

  document.addEventListener("click", function (event) {
    if (event.target.closest("#usage-retry")) retry(false);
  });
  document.addEventListener("change", function (event) {
    if (event.target.id !== "export-bom") return;
    try { localStorage.setItem(BOM_KEY, String(event.target.checked)); } catch (ignored) { /* private mode */ }
  });
  document.body.addEventListener("htmx:historyRestore", function () {
    if (!el("usage-results")) return;
    failures = {};
    showFailures();
    heatKey = null;
    enhance();
    refresh();
  });

  // After htmx has processed the page (its DOMContentLoaded listener came first).
  function start() {
    enhance();
    formatNumbers(el("usage-results"));
    renderChart();
    if (state().adjusted === "true") history.replaceState({ htmx: true }, "", state().url);
    adoptBrowserZone();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
