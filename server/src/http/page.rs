//! The web side's pages, rendered on the server: a folder (name, size,
//! modified; sortable by links, breadcrumbs; usable on a phone, no
//! JavaScript needed) and the live status (a little plain JavaScript that
//! reads `/.status.json` every second). Every name is HTML-escaped in text
//! and percent-encoded in links. The pages hold no inline script or style:
//! those are fixed [`ASSETS`] served from this server, so the pages' policy
//! can forbid any other.

use common::{ListEntry, ListEntryKind};

/// `text` safe inside HTML text and attribute values.
pub fn escape(text: &str) -> String {
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

/// A share path as a link's path: percent-encoded as the protocol's field
/// values are (`/` stays), which [`super::decode_path`] reads back.
pub fn href(path: &str) -> String {
    common::text::encode_value(path)
}

/// The pages' style, served as `/.page.css`.
const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1rem;max-width:60rem}\
table{border-collapse:collapse;width:100%}th,td{padding:.35rem .5rem;text-align:left;border-bottom:1px solid #ddd}\
td.size,th.size{text-align:right;white-space:nowrap}td.time{white-space:nowrap;color:#555}\
a{text-decoration:none}nav{margin-bottom:.8rem;word-break:break-all}td{overflow-wrap:anywhere}\
li.refused{color:#a00}label{margin-right:.5rem}\
@media (max-width:40rem){td.time,th.time{display:none}}";

fn document(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{}</title><link rel=\"stylesheet\" href=\"/.page.css\"></head><body>\n{body}</body></html>\n",
        escape(title)
    )
}

/// How a folder's entries are ordered: `?sort=name|size|modified&order=asc|desc`
/// (a `/.sort/KEY[-desc]/` view says it as `sort=KEY&order=desc`).
fn sort(entries: &mut [&ListEntry], query: &str) -> (&'static str, bool) {
    let mut key = "name";
    let mut descending = false;
    for pair in query.split('&') {
        match pair {
            "sort=size" => key = "size",
            "sort=modified" => key = "modified",
            "order=desc" => descending = true,
            _ => {}
        }
    }
    entries.sort_by(|a, b| {
        let folders_first = (a.kind != ListEntryKind::Dir).cmp(&(b.kind != ListEntryKind::Dir));
        let by = match key {
            "size" => a.size.cmp(&b.size),
            "modified" => a.modified.cmp(&b.modified),
            _ => a.name.cmp(&b.name),
        };
        folders_first.then(if descending { by.reverse() } else { by })
    });
    (key, descending)
}

/// The page of folder `path` ("" for the top) with `entries`; with
/// `writable`, the controls to upload files (with progress), make a folder,
/// rename and delete (these need JavaScript; browsing does not).
pub fn folder_page(path: &str, entries: &[ListEntry], query: &str, writable: bool) -> String {
    let mut crumbs = String::from("<nav><a href=\"/\">share</a>");
    let mut so_far = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        so_far.push_str(part);
        so_far.push('/');
        crumbs.push_str(&format!(" / <a href=\"/{}\">{}</a>", href(&so_far), escape(part)));
    }
    crumbs.push_str(" · <a href=\"/.status\">status</a></nav>\n");
    let mut sorted: Vec<&ListEntry> = entries.iter().collect();
    let (key, descending) = sort(&mut sorted, query);
    let folder = if path.is_empty() { String::new() } else { format!("{}/", href(path)) };
    let column = |name: &str, label: &str, class: &str| {
        let order = if key == name && !descending { "-desc" } else { "" };
        let mark = match (key == name, descending) {
            (true, false) => " ▲",
            (true, true) => " ▼",
            _ => "",
        };
        format!(
            "<th class=\"{class}\"><a href=\"/.sort/{name}{order}/{folder}\" rel=\"nofollow\">{label}{mark}</a></th>"
        )
    };
    let mut rows = String::new();
    if !path.is_empty() {
        rows.push_str("<tr><td><a href=\"../\">../</a></td><td class=\"size\"></td><td class=\"time\"></td></tr>\n");
    }
    for e in sorted {
        let base = if path.is_empty() { String::new() } else { format!("{path}/") };
        let (link, slash, size) = match e.kind {
            ListEntryKind::Dir => (format!("/{}/", href(&format!("{base}{}", e.name))), "/", String::new()),
            ListEntryKind::File => {
                (format!("/{}", href(&format!("{base}{}", e.name))), "", common::text::binary_size(e.size))
            }
        };
        let actions = if writable {
            "<td class=\"act\"><button class=\"ren\">rename</button> <button class=\"del\">delete</button></td>"
        } else {
            ""
        };
        rows.push_str(&format!(
            "<tr data-name=\"{}\" data-dir=\"{}\"><td><a href=\"{link}\">{}{slash}</a></td>\
             <td class=\"size\" title=\"{} bytes\">{size}</td><td class=\"time\">{}</td>{actions}</tr>\n",
            escape(&e.name),
            e.kind == ListEntryKind::Dir,
            escape(&e.name),
            e.size,
            escape(&e.modified.replace('T', " ").replace('Z', " UTC")),
        ));
    }
    let title = if path.is_empty() { "/".to_string() } else { format!("/{path}/") };
    let (controls, extra_column) = if writable { (MANAGE, "<th></th>") } else { ("", "") };
    let body = format!(
        "{crumbs}{controls}<table><thead><tr>{}{}{}{extra_column}</tr></thead><tbody>\n{rows}</tbody></table>\n\
         <p>{} · <a href=\"/.tar/{folder}\" rel=\"nofollow\">download all (tar)</a> · \
         <a href=\"/.zip/{folder}\" rel=\"nofollow\">(zip)</a></p>\n",
        column("name", "Name", "name"),
        column("size", "Size", "size"),
        column("modified", "Modified", "time"),
        count(entries.len(), "entry", "entries")
    );
    document(&title, &body)
}

/// `1 entry`, `2 entries`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `/robots.txt`: crawlers and mirrors (`wget -r`) fetch each file and
/// folder once, not every sort order and archive of every folder: those
/// live under `/.sort/`, `/.tar/` and `/.zip/` (the share's own names never
/// begin with a dot), which one prefix keeps them out of (wget reads only
/// prefixes); the links carry `rel="nofollow"` too.
const ROBOTS: &str = "User-agent: *\nDisallow: /.\n";

/// Uploads (files, or a folder with its tree, each file with its
/// progress; a refusal stays on the page, with "replace" for a name that
/// exists), a new folder, rename and delete: plain JavaScript calling `PUT`,
/// `MKCOL`, `MOVE`, `DELETE`.
const MANAGE: &str = r#"<form id="manage">
<label>files <input type="file" id="files" multiple></label>
<label>or a folder <input type="file" id="folder" webkitdirectory></label>
<button type="button" id="upload">upload</button>
<button type="button" id="mkdir">new folder</button>
<ul id="progress"></ul></form>
<script src="/.manage.js"></script>
"#;

/// The folder page's script (uploads, new folder, rename, delete), served as `/.manage.js`.
const MANAGE_SCRIPT: &str = r#"const here = location.pathname;
const enc = p => p.split("/").map(encodeURIComponent).join("/");
async function call(method, url, headers) {
  const r = await fetch(url, {method, headers});
  if (!r.ok) { alert(await r.text()); } else { location.reload(); }
}
function mkdir() { const n = prompt("New folder name"); if (n) call("MKCOL", here + enc(n) + "/"); }
function row(b) { const tr = b.closest("tr"); return [tr.dataset.name, tr.dataset.dir === "true"]; }
function del(b) {
  const [name, dir] = row(b);
  if (confirm("Delete " + name + (dir ? " and everything in it" : "") + "?")) call("DELETE", here + enc(name) + (dir ? "/" : ""));
}
function ren(b) {
  const [name] = row(b);
  const to = prompt("New name (a/b moves it into folder a)", name);
  if (to && to !== name) call("MOVE", here + enc(name), {Destination: here + enc(to), Overwrite: "F"});
}
// The folder's table and count as the server has them now; the uploads' list stays.
async function refresh() {
  const r = await fetch(location.href, {cache: "no-store"});
  const now = new DOMParser().parseFromString(await r.text(), "text/html");
  for (const part of ["table", "table + p"]) {
    const fresh = now.querySelector(part);
    if (fresh) document.querySelector(part).replaceWith(fresh);
  }
}
// Sends one file as `path` (under this folder); "stored", "exists" or why not.
async function send(path, file, li, replace) {
  const bar = document.createElement("progress");
  li.className = "";
  li.replaceChildren(path + " ", bar);
  if (!replace) {
    const there = await fetch(here + enc(path), {method: "HEAD", redirect: "manual", cache: "no-store"});
    if (there.status === 200) return "exists";
  }
  return new Promise(done => {
    const x = new XMLHttpRequest();
    x.open("PUT", here + enc(path));
    if (!replace) x.setRequestHeader("If-None-Match", "*");
    x.upload.onprogress = e => { bar.value = e.loaded / e.total; };
    x.onload = () => done(x.status < 300 ? "stored" : x.status === 412 ? "exists"
      : (x.responseText.trim() || "refused") + " (" + x.status + ")");
    x.onerror = () => done("failed: the connection broke");
    x.send(file);
  });
}
// Shows how one upload went; a name that exists may be replaced.
function show(li, path, file, outcome) {
  const said = document.createElement("span");
  li.replaceChildren(path + " ", said);
  li.className = outcome === "stored" ? "stored" : "refused";
  said.textContent = outcome === "exists" ? "already exists " : outcome;
  if (outcome !== "exists") return;
  const again = document.createElement("button");
  again.type = "button"; again.className = "replace"; again.textContent = "replace";
  again.addEventListener("click", async () => {
    const outcome = await send(path, file, li, true);
    show(li, path, file, outcome);
    refresh();
  });
  li.append(again);
}
async function upload() {
  const list = document.getElementById("progress");
  const files = [...document.getElementById("files").files].map(f => [f.name, f]);
  const tree = [...document.getElementById("folder").files].map(f => [f.webkitRelativePath || f.name, f]);
  let all = true;
  // A chosen folder's folders first, each after its parent.
  const folders = new Set();
  for (const [path] of tree) {
    const parts = path.split("/");
    for (let i = 1; i < parts.length; i++) folders.add(parts.slice(0, i).join("/"));
  }
  for (const folder of folders) {
    const r = await fetch(here + enc(folder) + "/", {method: "MKCOL"});
    if (!r.ok && r.status !== 405) {
      all = false;
      const li = document.createElement("li"); li.className = "refused";
      li.textContent = folder + "/ " + ((await r.text()).trim() || "refused") + " (" + r.status + ")";
      list.append(li);
    }
  }
  for (const [path, file] of files.concat(tree)) {
    const li = document.createElement("li"); list.append(li);
    const outcome = await send(path, file, li, false);
    show(li, path, file, outcome);
    all = all && outcome === "stored";
  }
  document.getElementById("manage").reset();
  if (all) { location.reload(); } else { refresh(); }
}
document.getElementById("manage").addEventListener("submit", e => e.preventDefault());
document.getElementById("upload").addEventListener("click", upload);
document.getElementById("mkdir").addEventListener("click", mkdir);
document.addEventListener("click", e => {
  if (e.target.matches("button.ren")) ren(e.target);
  if (e.target.matches("button.del")) del(e.target);
});
"#;

/// The live status page: clients and what each is doing, refreshed every
/// second from `/.status.json` (the same data as the line protocol's `info`).
pub fn status_page() -> String {
    let body = r#"<nav><a href="/">share</a> · status</nav>
<p id="summary">loading…</p>
<table><thead><tr><th>name</th><th>address</th><th>on</th><th>idle</th><th>doing</th></tr></thead><tbody id="sessions"></tbody></table>
<h3>web</h3><table><thead><tr><th>name</th><th>address</th><th>on</th><th>idle</th><th>doing</th></tr></thead><tbody id="web"></tbody></table>
<h3>recently left</h3><ul id="left"></ul>
<script src="/.status.js"></script>
"#;
    document("status", body)
}

/// The status page's script, served as `/.status.js`.
const STATUS_SCRIPT: &str = r#"function cell(text) { const td = document.createElement("td"); td.textContent = text; return td; }
async function refresh() {
  try {
    const s = await (await fetch("/.status.json", {cache: "no-store"})).json();
    document.getElementById("summary").textContent =
      `up ${s.uptime_secs}s · ${s.clients} of ${s.max_clients} clients`;
    const row = x => {
      const tr = document.createElement("tr");
      tr.append(cell(x.name), cell(x.address), cell(x.instance ?? ""), cell(x.idle_secs + "s"), cell(x.activity));
      return tr;
    };
    document.getElementById("sessions").replaceChildren(...s.sessions.map(row));
    document.getElementById("web").replaceChildren(...s.web.map(row));
    document.getElementById("left").replaceChildren(...s.recently_left.map(d => {
      const li = document.createElement("li"); li.textContent = `${d.name} (${d.address}) at ${d.left_at}`; return li;
    }));
  } catch (e) {
    document.getElementById("summary").textContent = "the server does not answer";
  }
}
refresh();
setInterval(refresh, 1000);
"#;

/// The pages' fixed assets: path (without its `/`), content type, text.
pub const ASSETS: [(&str, &str, &str); 4] = [
    ("robots.txt", "text/plain; charset=utf-8", ROBOTS),
    (".page.css", "text/css; charset=utf-8", STYLE),
    (".manage.js", "text/javascript; charset=utf-8", MANAGE_SCRIPT),
    (".status.js", "text/javascript; charset=utf-8", STATUS_SCRIPT),
];
