/* citechat widget: a chat bubble for any page. Loads nothing else; talks to the app's /api/ask.
 * <script src="http://HOST:PORT/widget.js" data-title="Ask the article" async></script>
 * Options (data-*): title, mode ("bubble" | "inline"), api (base URL; default: where this file came from),
 * collection (a named corpus; default: the server's). 
 * Everything lives in a shadow root, so the page's CSS and ours do not mix; all text is set as text. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || window.__citechatWidget) return;
  window.__citechatWidget = true;
  var data = script.dataset || {};
  var base = (data.api || new URL(script.src, document.baseURI).href.replace(/\/widget\.js(\?.*)?$/, "")).replace(/\/$/, "");
  var title = data.title || "Ask the articles";
  var inline = data.mode === "inline";
  var collection = data.collection || null;
  var turns = [];

  var CSS = [
    ":host{all:initial;}",
    "*{box-sizing:border-box;font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;}",
    ".bubble{position:fixed;right:18px;bottom:18px;width:56px;height:56px;border-radius:50%;border:0;cursor:pointer;",
    "background:#2563eb;color:#fff;box-shadow:0 4px 14px rgba(0,0,0,.25);z-index:2147483646;display:flex;",
    "align-items:center;justify-content:center;}",
    ".bubble:hover{background:#1d4ed8;} .bubble svg{width:28px;height:28px;fill:currentColor;}",
    ".panel{position:fixed;right:18px;bottom:86px;width:min(380px,calc(100vw - 24px));height:min(560px,calc(100vh - 110px));",
    "background:#fff;color:#111827;border-radius:14px;box-shadow:0 10px 30px rgba(0,0,0,.25);z-index:2147483647;",
    "display:flex;flex-direction:column;overflow:hidden;font-size:14px;line-height:1.45;}",
    ".panel.inline{position:static;width:100%;height:100%;border-radius:0;box-shadow:none;}",
    ".panel[hidden]{display:none;}",
    "@media (max-width:480px){.panel:not(.inline){right:6px;left:6px;width:auto;bottom:80px;height:calc(100vh - 100px);}}",
    ".head{display:flex;align-items:center;justify-content:space-between;padding:10px 14px;background:#2563eb;color:#fff;}",
    ".head h2{margin:0;font-size:15px;font-weight:600;} .head button{background:none;border:0;color:#fff;font-size:20px;cursor:pointer;}",
    ".log{flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:10px;background:#f9fafb;}",
    ".msg{max-width:92%;padding:8px 11px;border-radius:12px;white-space:pre-wrap;overflow-wrap:anywhere;}",
    ".user{align-self:flex-end;background:#2563eb;color:#fff;border-bottom-right-radius:3px;}",
    ".bot{align-self:flex-start;background:#fff;border:1px solid #e5e7eb;border-bottom-left-radius:3px;}",
    ".bot.abstain{background:#fff7ed;border-color:#fdba74;font-style:italic;color:#7c2d12;}",
    ".bot.error{background:#fef2f2;border-color:#fca5a5;color:#991b1b;}",
    ".bot.pending{color:#6b7280;}",
    ".marker{background:none;border:0;padding:0 1px;color:#2563eb;font-weight:600;cursor:pointer;font-size:inherit;}",
    ".sources{margin:8px 0 0;padding:6px 0 0;border-top:1px solid #e5e7eb;list-style:none;font-style:normal;}",
    ".source{margin:4px 0;}",
    ".cite{display:block;width:100%;text-align:left;background:#f3f4f6;border:1px solid #e5e7eb;border-radius:8px;",
    "padding:5px 8px;cursor:pointer;font-size:12.5px;color:#111827;}",
    ".cite:hover,.cite.open{background:#eff6ff;border-color:#93c5fd;}",
    ".cite b{color:#2563eb;margin-right:4px;} .cite .name{color:#6b7280;margin-left:4px;}",
    ".context{margin:4px 2px 0;padding:6px 8px;font-size:12.5px;background:#fff;border-left:3px solid #2563eb;white-space:normal;}",
    ".context mark{background:#fde68a;color:inherit;padding:0 2px;border-radius:2px;}",
    "form{display:flex;gap:6px;padding:10px;border-top:1px solid #e5e7eb;background:#fff;}",
    "input{flex:1;min-width:0;padding:9px 11px;border:1px solid #d1d5db;border-radius:9px;font-size:14px;color:#111827;background:#fff;}",
    "input:focus{outline:2px solid #93c5fd;border-color:#2563eb;}",
    "form button{padding:0 14px;border:0;border-radius:9px;background:#2563eb;color:#fff;font-size:14px;cursor:pointer;}",
    "form button:disabled{background:#93c5fd;cursor:default;}"
  ].join("");

  // Bidirectional controls would reorder what the reader sees ("nalpak" shown as "kaplan"): show them as marks.
  var BIDI = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
  function shown(text) {
    return String(text).replace(BIDI, function (c) {
      return "\u27e8U+" + c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0") + "\u27e9";
    });
  }

  function text(value) { return document.createTextNode(shown(value)); }

  function el(tag, cls, content) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (content != null) node.textContent = shown(content);
    return node;
  }

  var host = el("div");
  host.id = "citechat-widget";
  var root = host.attachShadow({ mode: "open" });
  var style = el("style");
  style.textContent = CSS;
  root.appendChild(style);

  var panel = el("section", inline ? "panel inline" : "panel");
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", title);
  var head = el("div", "head");
  head.appendChild(el("h2", null, title));
  var log = el("div", "log");
  log.setAttribute("aria-live", "polite");
  var form = el("form");
  var input = el("input");
  input.type = "text";
  input.placeholder = "Ask a question…";
  input.setAttribute("aria-label", "Question");
  input.maxLength = 2000;
  var send = el("button", null, "Ask");
  send.type = "submit";
  form.appendChild(input);
  form.appendChild(send);
  panel.appendChild(head);
  panel.appendChild(log);
  panel.appendChild(form);

  if (!inline) {
    var close = el("button", null, "×");
    close.type = "button";
    close.setAttribute("aria-label", "Close");
    head.appendChild(close);
    panel.hidden = true;
    var bubble = el("button", "bubble");
    bubble.type = "button";
    bubble.setAttribute("aria-label", title);
    bubble.title = title;
    var svgNS = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(svgNS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    var path = document.createElementNS(svgNS, "path");
    path.setAttribute("d", "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z");
    svg.appendChild(path);
    bubble.appendChild(svg);
    bubble.addEventListener("click", function () {
      panel.hidden = !panel.hidden;
      if (!panel.hidden) input.focus();
    });
    close.addEventListener("click", function () { panel.hidden = true; bubble.focus(); });
    root.appendChild(bubble);
  }
  root.appendChild(panel);

  function scrollDown() { log.scrollTop = log.scrollHeight; }

  function sourceUrl(citation) {
    var path = citation.source.split("/").map(encodeURIComponent).join("/");
    return base + "/api/sources/" + path + "?sentence_id=" + encodeURIComponent(citation.sentence_id) +
      (collection ? "&collection=" + encodeURIComponent(collection) : "");
  }

  function toggleContext(item, button, citation) {
    var shown = item.querySelector(".context");
    if (shown) { shown.remove(); button.classList.remove("open"); return; }
    button.classList.add("open");
    var box = el("div", "context", "…");
    item.appendChild(box);
    fetch(sourceUrl(citation)).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    }).then(function (doc) {
      var ctx = doc.context || { before: "", sentence: citation.text, after: "" };
      box.textContent = "";
      box.appendChild(text(ctx.before));
      box.appendChild(el("mark", null, ctx.sentence));
      box.appendChild(text(ctx.after));
    }).catch(function () {
      box.textContent = "";
      box.appendChild(el("mark", null, citation.text));
    });
  }

  function renderAnswer(node, answer) {
    node.textContent = "";
    node.className = answer.abstained ? "msg bot abstain" : "msg bot";
    var items = [];
    var parts = answer.answer.split(/(\[\d{1,2}\])/);
    parts.forEach(function (part) {
      var m = /^\[(\d{1,2})\]$/.exec(part);
      var n = m ? parseInt(m[1], 10) : 0;
      if (n >= 1 && n <= answer.citations.length) {
        var marker = el("button", "marker", part);
        marker.type = "button";
        marker.addEventListener("click", function () {
          var item = items[n - 1];
          item.scrollIntoView({ block: "nearest" });
          if (!item.querySelector(".context")) toggleContext(item, item.firstChild, answer.citations[n - 1]);
        });
        node.appendChild(marker);
      } else if (part) {
        node.appendChild(text(part));
      }
    });
    if (!answer.citations.length) return;
    var list = el("ol", "sources");
    answer.citations.forEach(function (c, i) {
      var item = el("li", "source");
      var button = el("button", "cite");
      button.type = "button";
      button.appendChild(el("b", null, "[" + (i + 1) + "]"));
      button.appendChild(text(c.text));
      button.appendChild(el("span", "name", "— " + c.source + (c.page ? ", page " + c.page : "")));
      button.addEventListener("click", function () { toggleContext(item, button, c); });
      item.appendChild(button);
      list.appendChild(item);
      items.push(item);
    });
    node.appendChild(list);
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var question = input.value.trim();
    if (!question || send.disabled) return;
    input.value = "";
    log.appendChild(el("div", "msg user", question));
    var reply = el("div", "msg bot pending", "Searching the articles…");
    log.appendChild(reply);
    scrollDown();
    send.disabled = true;
    fetch(base + "/api/ask", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ question: question, history: turns.slice(-10), collection: collection })
    }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) throw new Error(body.detail || ("HTTP " + r.status));
        return body;
      });
    }).then(function (answer) {
      renderAnswer(reply, answer);
      turns.push({ role: "user", content: question }, { role: "assistant", content: answer.answer });
    }).catch(function (err) {
      reply.className = "msg bot error";
      reply.textContent = "Sorry: " + (err && err.message ? err.message : "the chat is unavailable.");
    }).then(function () {
      send.disabled = false;
      scrollDown();
      input.focus();
    });
  });

  function mount() { document.body.appendChild(host); }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
