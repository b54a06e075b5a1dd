//! The console's page frame and its one stylesheet, kept in the binary: no asset is fetched
//! at build or run time.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

/// Text safe inside HTML and SVG, in element content and in quoted attributes.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Text safe in a URL's path segment or query value (the unreserved characters stay).
pub(crate) fn percent(text: &str) -> String {
    const KEPT: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    percent_encoding::utf8_percent_encode(text, KEPT).to_string()
}

/// A button posting to `action` with the session's CSRF token, and `fields` (HTML) before it.
pub(crate) fn button(action: &str, label: &str, csrf: &str, fields: &str) -> String {
    format!(
        "<form class=\"act\" method=\"post\" action=\"{action}\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">{fields}<button>{label}</button></form>",
        escape(csrf)
    )
}

/// The stylesheet at `/console/console.css`.
pub(crate) const CSS: &str = "\
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,sans-serif;color:#0f172a;background:#f8fafc}\
header{display:flex;gap:1.5rem;align-items:center;padding:.6rem 1.2rem;background:#0f172a;color:#e2e8f0}\
header a{color:#e2e8f0;text-decoration:none}header .me{margin-left:auto;display:flex;gap:.8rem;align-items:center}\
main{padding:1.2rem}h1{font-size:1.3rem;margin:.2rem 0 1rem}h2{font-size:1.05rem;margin:1.4rem 0 .5rem}\
table{border-collapse:collapse;background:#fff;width:100%}th,td{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #e2e8f0;vertical-align:top}\
th{background:#f1f5f9;font-weight:600}a{color:#1d4ed8}.status{font-weight:600}\
.s-running,.s-debug{color:#2563eb}.s-completed{color:#16a34a}.s-failed{color:#dc2626}.s-canceled{color:#64748b}\
.counts{display:flex;gap:.6rem;margin-bottom:1rem;flex-wrap:wrap}.counts a{padding:.25rem .7rem;border-radius:1rem;background:#e2e8f0;text-decoration:none;color:#0f172a}\
.counts a.on{background:#0f172a;color:#fff}form.filter{display:flex;gap:.5rem;margin-bottom:1rem;flex-wrap:wrap}\
input,select,button{font:inherit;padding:.3rem .5rem}button{cursor:pointer}.diagram-box{overflow:auto;background:#fff;border:1px solid #e2e8f0;padding:.5rem}\
.error{background:#fee2e2;color:#991b1b;padding:.6rem .9rem;border-radius:.3rem}.signin{max-width:22rem;margin:4rem auto;background:#fff;padding:1.5rem;border:1px solid #e2e8f0;border-radius:.4rem}\
.signin label{display:block;margin:.6rem 0 .2rem}.signin input{width:100%}.signin button{margin-top:1rem;width:100%}\
form.act{display:inline-flex;gap:.4rem;align-items:flex-start;margin:.2rem .4rem .2rem 0}form.act textarea{font:12px monospace;min-width:16rem}\
.acts{margin-bottom:.6rem}form.start{display:grid;gap:.5rem;max-width:40rem}form.start textarea{font:12px monospace;width:100%}form.start label{display:grid;gap:.2rem}\
pre{background:#fff;border:1px solid #e2e8f0;padding:.6rem;overflow:auto;max-height:24rem}.pager{margin-top:.8rem;display:flex;gap:1rem}\
form.act{flex-wrap:wrap}label.field{display:flex;flex-direction:column;gap:.1rem;font-size:.92em}.held{margin:.1rem 0 .3rem;color:#475569}\
#progress{margin:1rem 0}#progress progress{width:16rem;max-width:100%}:focus-visible{outline:2px solid #2563eb;outline-offset:2px}\
@media (max-width:700px){header{flex-wrap:wrap;gap:.4rem .9rem;padding:.5rem .8rem}header .me{margin-left:0}main{padding:.6rem}\
table{display:block;overflow-x:auto}form.act textarea{min-width:0;width:100%}form.filter input,form.filter select{flex:1 1 9rem}}\
";

/// The script at `/console/console.js`. An instance's page listens to its server-sent events
/// and redraws its live part at each change (one request at a time; a change during one
/// redraws once more after it). While the operator edits a form of the live part (a field has
/// the focus, or a panel of actions is open) the redraw waits, so that no edit is lost under them.
/// Clicking a flow of the diagram chooses it for a gateway that could not choose (bk-sops'
/// `skip_exg`). The instance list sends a bulk action one instance at a time, with a progress bar and each
/// outcome as it comes (without the script, the form posts the whole selection at once).
pub(crate) const SCRIPT: &str = r##"(function () {
  var bulk = document.getElementById("bulk"), box = document.getElementById("progress");
  if (!bulk || !box || !window.fetch || !window.DOMParser) return;
  bulk.addEventListener("submit", function (event) {
    var ids = Array.prototype.map.call(bulk.querySelectorAll("input[name=id]:checked"), function (c) { return c.value; });
    if (!ids.length) return;
    event.preventDefault();
    var action = bulk.elements.action.value, csrf = bulk.elements.csrf.value, done = 0;
    var bar = box.querySelector("progress"), said = box.querySelector("output"), rows = box.querySelector("tbody");
    var send = bulk.querySelector("button");
    box.hidden = false; bar.max = ids.length; bar.value = 0; rows.innerHTML = ""; send.disabled = true;
    function told(id, outcome) { var row = rows.insertRow(); row.insertCell().textContent = id; row.insertCell().textContent = outcome; }
    function next(i) {
      said.textContent = action + ": " + i + " of " + ids.length + " sent, " + done + " done";
      if (i >= ids.length) { send.disabled = false; box.dataset.finished = "true"; return; }
      var body = new URLSearchParams({ csrf: csrf, action: action, id: ids[i] });
      fetch("/console/bulk", { method: "POST", body: body, credentials: "same-origin" })
        .then(function (r) { return r.text(); })
        .then(function (html) {
          var page = new DOMParser().parseFromString(html, "text/html"), row = page.querySelector("#bulk tbody tr");
          if (!row) { var error = page.querySelector(".error"); return told(ids[i], error ? error.textContent : "no answer"); }
          if (row.cells[1] && row.cells[1].textContent === "done") done += 1;
          rows.appendChild(document.importNode(row, true));
        })
        .catch(function (e) { told(ids[i], String(e)); })
        .then(function () { bar.value = i + 1; next(i + 1); });
    }
    delete box.dataset.finished;
    next(0);
  });
})();
(function () {
  var live = document.getElementById("live");
  if (!live || !window.EventSource) return;
  var busy = false, again = false, held = false;
  function editing() {
    var a = document.activeElement;
    return (a && live.contains(a) && /^(TEXTAREA|INPUT|SELECT)$/.test(a.tagName)) ||
      live.querySelector("details.do[open]") !== null;
  }
  function redraw() {
    if (editing()) { held = true; return; }
    if (busy) { again = true; return; }
    busy = true;
    fetch(live.dataset.live, { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) { if (html !== null && !editing()) live.innerHTML = html; else if (html !== null) held = true; })
      .catch(function () {})
      .then(function () { busy = false; if (again) { again = false; redraw(); } });
  }
  function resume() { setTimeout(function () { if (held && !editing()) { held = false; redraw(); } }, 0); }
  // A flow clicked on the diagram is chosen in the form of the gateway that could not choose.
  live.addEventListener("click", function (event) {
    var flow = event.target.closest ? event.target.closest("polyline[data-flow]") : null;
    var select = flow && live.querySelector("select[name=flow]");
    if (!select) return;
    var option = Array.prototype.filter.call(select.options, function (o) { return o.value === flow.getAttribute("data-flow"); })[0];
    if (!option) return;
    select.value = option.value;
    select.form.querySelector("button").focus();
  });
  live.addEventListener("focusout", resume);
  live.addEventListener("toggle", resume, true);
  new EventSource(live.dataset.events).addEventListener("changed", redraw);
})();
"##;

/// A whole page: the header (with the signed-in user and a sign-out button when `who` is
/// given: the user and the session's CSRF token) and `body`.
pub(crate) fn page(title: &str, who: Option<(&str, &str)>, body: &str) -> Html<String> {
    let me = who.map_or(String::new(), |(user, csrf)| {
        format!(
            "<span class=\"me\">{}<form method=\"post\" action=\"/console/sign-out\"><input type=\"hidden\" name=\"csrf\" value=\"{}\"><button>Sign out</button></form></span>",
            escape(user),
            escape(csrf)
        )
    });
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
<title>{} · Flowstone</title><link rel=\"stylesheet\" href=\"/console/console.css\"></head><body>\
<header><a href=\"/console\"><strong>Flowstone</strong></a><a href=\"/console\">Instances</a><a href=\"/console/models\">Models</a><a href=\"/console/incidents\">Incidents</a><a href=\"/console/stones\">Stones</a><a href=\"/console/inbox\">Inbox</a>{me}</header><main>{body}</main></body></html>",
        escape(title)
    ))
}

/// An error as a page, with its status.
pub(crate) fn error_page(status: StatusCode, message: &str, who: Option<(&str, &str)>) -> Response {
    let title = status.canonical_reason().unwrap_or("Error");
    let body = format!("<h1>{}</h1><p class=\"error\">{}</p>", escape(title), escape(message));
    (status, page(title, who, &body)).into_response()
}
