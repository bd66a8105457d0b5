/* citechat widget: a chat bubble for any page. Loads nothing else; talks to the app's /api: the answer streams from
 * /api/ask/stream (server-sent events), or comes whole from /api/ask where streaming is unavailable.
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
  var busy = false;

  var WELCOME = "Hi! Ask me about these articles: every answer shows the sentences it comes from.";
  var STAGES = { searching: "Searching the articles…", generating: "Writing the answer…" };
  // What a reader is told for each error code of the API ({"error": code, "detail": ...}; the detail is for
  // developers and may name server settings, so it is never shown), and for failures found here.
  var PROBLEMS = {
    invalid_question: "Please rephrase: that question is empty, too long or not text.",
    invalid_request: "Please rephrase: that question could not be sent.",
    request_too_large: "That question is too long: please shorten it.",
    not_found: "This bot's articles could not be found.",
    index_not_ready: "The bot has no articles to answer from yet.",
    ingest_in_progress: "The articles are being updated: try again in a minute.",
    unreachable: "Server unreachable: the bot is offline, or this device has no connection.",
    not_allowed: "This page is not allowed to use the bot.",
    interrupted: "The answer was cut off: please ask again."
  };
  var TROUBLE = "Sorry, the bot could not answer right now: try again later.";

  // Every text meets WCAG AA contrast (4.5:1) on its background.
  var CSS = [
    ":host{all:initial;}",
    "*{box-sizing:border-box;font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;}",
    "button:focus-visible,input:focus-visible{outline:2px solid #1d4ed8;outline-offset:2px;}",
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
    ".log{position:relative;flex:1;overflow-y:auto;padding:12px;display:flex;flex-direction:column;gap:10px;background:#f9fafb;}",
    ".msg{max-width:92%;padding:8px 11px;border-radius:12px;white-space:pre-wrap;overflow-wrap:anywhere;}",
    ".user{align-self:flex-end;background:#2563eb;color:#fff;border-bottom-right-radius:3px;}",
    ".bot{align-self:flex-start;background:#fff;border:1px solid #e5e7eb;border-bottom-left-radius:3px;}",
    ".bot.abstain{background:#fff7ed;border-color:#fdba74;font-style:italic;color:#7c2d12;}",
    ".bot.error{background:#fef2f2;border-color:#fca5a5;color:#991b1b;}",
    ".bot.pending{color:#4b5563;}",
    ".suggestions{align-self:flex-start;max-width:92%;display:flex;flex-wrap:wrap;gap:6px;}",
    ".suggestion{background:#eff6ff;border:1px solid #93c5fd;border-radius:14px;padding:5px 10px;color:#1e40af;",
    "font-size:13px;text-align:left;cursor:pointer;} .suggestion:hover{background:#dbeafe;}",
    ".marker{background:none;border:0;padding:0 1px;color:#1d4ed8;font-weight:600;cursor:pointer;font-size:inherit;}",
    ".sources{margin:8px 0 0;padding:6px 0 0;border-top:1px solid #e5e7eb;list-style:none;font-style:normal;}",
    ".source{margin:4px 0;}",
    ".cite{display:block;width:100%;text-align:left;background:#f3f4f6;border:1px solid #e5e7eb;border-radius:8px;",
    "padding:5px 8px;cursor:pointer;font-size:12.5px;color:#111827;}",
    ".cite:hover,.cite.open{background:#eff6ff;border-color:#93c5fd;}",
    ".cite b{color:#1d4ed8;margin-right:4px;} .cite .name{color:#4b5563;margin-left:4px;}",
    ".context{margin:4px 2px 0;padding:6px 8px;font-size:12.5px;background:#fff;border-left:3px solid #2563eb;white-space:normal;}",
    ".context mark{background:#fde68a;color:#111827;padding:0 2px;border-radius:2px;}",
    "form{display:flex;gap:6px;padding:10px;border-top:1px solid #e5e7eb;background:#fff;}",
    "input{flex:1;min-width:0;padding:9px 11px;border:1px solid #d1d5db;border-radius:9px;font-size:14px;color:#111827;background:#fff;}",
    "input::placeholder{color:#6b7280;}",
    "input:focus{outline:2px solid #93c5fd;border-color:#2563eb;}",
    "form button{padding:0 14px;border:0;border-radius:9px;background:#2563eb;color:#fff;font-size:14px;cursor:pointer;}",
    "form button:disabled{background:#64748b;cursor:default;}"
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
  log.appendChild(el("div", "msg bot welcome", WELCOME));
  var suggestions = el("div", "suggestions");
  suggestions.setAttribute("role", "group");
  suggestions.setAttribute("aria-label", "Suggested questions");
  log.appendChild(suggestions);
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
      if (panel.hidden) return;
      suggest();
      input.focus();
    });
    var shut = function () { panel.hidden = true; bubble.focus(); };
    close.addEventListener("click", shut);
    panel.addEventListener("keydown", function (event) { if (event.key === "Escape") shut(); });
    root.appendChild(bubble);
  }
  root.appendChild(panel);

  function problem(kind, status, retryAfter) {
    var error = new Error(kind);
    error.kind = kind;
    error.status = status || 0;
    error.retryAfter = retryAfter;
    return error;
  }

  function describe(error) {
    if (error && error.kind === "rate_limited") {
      return "Too many questions: try again in " + (error.retryAfter > 0 ? error.retryAfter + " s." : "a minute.");
    }
    return (error && PROBLEMS[error.kind]) || TROUBLE;
  }

  function refused(response) {
    return response.json().catch(function () { return {}; }).then(function (body) {
      var kind = body && typeof body.error === "string" ? body.error : "http_" + response.status;
      throw problem(kind, response.status, parseInt(response.headers.get("Retry-After") || "", 10));
    });
  }

  // A fetch that fails outright is either a server that is down or a page whose origin the server refuses
  // (CORS). A no-cors request cannot be refused for its origin: it succeeds (opaque) whenever the server is up.
  function diagnose() {
    return fetch(base + "/api/health", { mode: "no-cors", cache: "no-store" }).then(
      function () { return problem("not_allowed"); }, function () { return problem("unreachable"); });
  }

  function post(path, payload) {
    return fetch(base + path, { method: "POST", headers: { "Content-Type": "application/json" }, body: payload });
  }

  function askWhole(payload) {
    return post("/api/ask", payload).then(function (r) {
      return r.ok ? r.json() : refused(r);
    }, function () {
      return diagnose().then(function (error) { throw error; });
    });
  }

  // Server-sent events over fetch: "event:" and "data:" lines, blank-line separated. Resolves with the final
  // answer; rejects with kind "fallback" when nothing arrived (then /api/ask is asked instead).
  function askStreamed(payload, reply) {
    if (!window.ReadableStream || !window.TextDecoder) return Promise.reject(problem("fallback"));
    return post("/api/ask/stream", payload).then(function (r) {
      if (r.status === 404 || r.status === 405) throw problem("fallback");
      if (!r.ok) return refused(r);
      if (!r.body || !/^text\/event-stream/.test(r.headers.get("Content-Type") || "")) throw problem("fallback");
      return readEvents(r.body.getReader(), reply);
    }, function () {
      throw problem("fallback");
    });
  }

  function readEvents(reader, reply) {
    var decoder = new TextDecoder();
    var buffer = "";
    var started = false;

    function handle(block) {
      var name = "message";
      var lines = [];
      block.split(/\r\n|\r|\n/).forEach(function (line) {
        var colon = line.indexOf(":");
        var field = colon < 0 ? line : line.slice(0, colon);
        var value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
        if (field === "event") name = value;
        else if (field === "data") lines.push(value);
      });
      if (!lines.length) return null;
      var body = JSON.parse(lines.join("\n"));
      started = true;
      if (name === "status") reply.status(body.stage);
      else if (name === "citations") reply.sources(body.citations || []);
      else if (name === "delta") reply.append(String(body.text || ""));
      else if (name === "error") throw problem(body.error || "unavailable");
      else if (name === "answer") return body;
      return null;
    }

    function cut() { return started ? problem("interrupted") : problem("fallback"); }

    function pump() {
      return reader.read().then(function (chunk) {
        buffer += chunk.done ? decoder.decode() : decoder.decode(chunk.value, { stream: true });
        var blocks = buffer.split(/\r\n\r\n|\n\n|\r\r/);
        buffer = chunk.done ? "" : blocks.pop();
        for (var i = 0; i < blocks.length; i++) {
          var answer = handle(blocks[i]);
          if (answer) {
            reader.cancel().catch(function () {});
            return answer;
          }
        }
        if (chunk.done) throw cut();
        return pump();
      }, function () {
        throw cut();
      });
    }
    return pump();
  }

  function sourceUrl(citation) {
    var path = citation.source.split("/").map(encodeURIComponent).join("/");
    return base + "/api/sources/" + path + "?sentence_id=" + encodeURIComponent(citation.sentence_id) +
      (collection ? "&collection=" + encodeURIComponent(collection) : "");
  }

  function toggleContext(item, button, citation) {
    var open = item.querySelector(".context");
    if (open) { open.remove(); button.classList.remove("open"); return; }
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

  function sameSources(a, b) {
    return a.length === b.length && a.every(function (c, i) {
      return c.source === b[i].source && c.sentence_id === b[i].sentence_id;
    });
  }

  // One answer as it arrives: status line, then text (deltas), sources (provisional until the final answer),
  // and the final answer, whose [n] markers then open the sources they name.
  function replyView() {
    var node = el("div", "msg bot pending", STAGES.searching);
    node.setAttribute("aria-busy", "true");
    var body = el("span", "text");
    var list = null;
    var items = [];
    var cited = [];
    var written = "";

    function started() {
      if (body.parentNode) return;
      node.textContent = "";
      node.className = "msg bot";
      node.appendChild(body);
    }

    function drawText(answerText, citations) {
      body.textContent = "";
      answerText.split(/(\[\d{1,2}\])/).forEach(function (part) {
        var m = /^\[(\d{1,2})\]$/.exec(part);
        var n = m ? parseInt(m[1], 10) : 0;
        if (citations && n >= 1 && n <= citations.length) {
          var marker = el("button", "marker", part);
          marker.type = "button";
          marker.setAttribute("aria-label", "Source " + n);
          marker.addEventListener("click", function () {
            var item = items[n - 1];
            item.scrollIntoView({ block: "nearest" });
            if (!item.querySelector(".context")) toggleContext(item, item.firstChild, citations[n - 1]);
          });
          body.appendChild(marker);
        } else if (part) {
          body.appendChild(text(part));
        }
      });
    }

    function drawSources(citations) {
      if (list) list.remove();
      list = null;
      items = [];
      cited = citations;
      if (!citations.length) return;
      list = el("ol", "sources");
      list.setAttribute("aria-label", "Sources");
      citations.forEach(function (c, i) {
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

    return {
      node: node,
      status: function (stage) {
        if (!body.parentNode && STAGES[stage]) node.textContent = STAGES[stage];
      },
      sources: function (citations) {
        started();
        drawSources(citations);
        reveal(node);
      },
      append: function (delta) {
        started();
        written += delta;
        drawText(written, null);
        reveal(node);
      },
      finish: function (answer) {
        started();
        node.className = answer.abstained ? "msg bot abstain" : "msg bot";
        if (!list || !sameSources(cited, answer.citations)) drawSources(answer.citations);
        drawText(answer.answer, answer.citations);
        node.setAttribute("aria-busy", "false");
      },
      fail: function (message) {
        node.className = "msg bot error";
        node.textContent = message;
        node.setAttribute("aria-busy", "false");
      }
    };
  }

  // Follow a growing answer down only until its first line reaches the top, so its start stays in view.
  function reveal(node) {
    log.scrollTop = Math.min(log.scrollHeight - log.clientHeight, node.offsetTop - 8);
  }

  function ask(question) {
    question = question.trim();
    if (!question || busy) return;
    busy = true;
    send.disabled = true;
    suggestions.remove();
    log.appendChild(el("div", "msg user", question));
    var reply = replyView();
    log.appendChild(reply.node);
    reveal(reply.node);
    var payload = JSON.stringify({ question: question, history: turns.slice(-10), collection: collection });
    askStreamed(payload, reply).catch(function (error) {
      if (error.kind !== "fallback") throw error;
      return askWhole(payload);
    }).then(function (answer) {
      reply.finish(answer);
      turns.push({ role: "user", content: question }, { role: "assistant", content: answer.answer });
    }).catch(function (error) {
      reply.fail(describe(error));
    }).then(function () {
      busy = false;
      send.disabled = false;
      reveal(reply.node);
      input.focus();
    });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (busy) return;
    var question = input.value;
    input.value = "";
    ask(question);
  });

  var suggestionsAsked = false;
  function suggest() {
    if (suggestionsAsked) return;
    suggestionsAsked = true;
    var query = "?n=2" + (collection ? "&collection=" + encodeURIComponent(collection) : "");
    fetch(base + "/api/suggestions" + query).then(function (r) {
      return r.ok ? r.json() : { questions: [] };
    }).then(function (found) {
      (found.questions || []).slice(0, 2).forEach(function (question) {
        var chip = el("button", "suggestion", question);
        chip.type = "button";
        chip.addEventListener("click", function () { ask(String(question)); });
        suggestions.appendChild(chip);
      });
    }).catch(function () {});  // optional: the welcome line stands alone
  }
  if (inline) suggest();
  function mount() { document.body.appendChild(host); }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
