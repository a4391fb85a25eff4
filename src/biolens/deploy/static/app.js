// The biolens page: reads the model card, sends images or sequences to the server, shows each prediction with
// its explanation. No framework, no build step; every text from the server is set with textContent.
(function () {
  "use strict";

  var card = null;
  var files = [];

  function $(id) { return document.getElementById(id); }

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") { node.textContent = attrs[k]; } else { node.setAttribute(k, attrs[k]); }
    });
    (children || []).forEach(function (c) {
      node.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return node;
  }

  function svg(tag, attrs) {
    var node = document.createElementNS("http://www.w3.org/2000/svg", tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    return node;
  }

  function num(v, digits) {
    if (v === null || v === undefined || (typeof v === "number" && isNaN(v))) { return "–"; }
    return typeof v === "number" ? v.toFixed(digits === undefined ? 4 : digits) : String(v);
  }

  function setStatus(text) { $("status").textContent = text; }

  function showError(text) {
    var box = $("error");
    box.textContent = text;
    box.hidden = false;
  }

  function clearError() {
    $("error").hidden = true;
    $("error").textContent = "";
  }

  // ---- the model card -----------------------------------------------------------------------------------------
  function row(table, name, value, code) {
    var td = el("td");
    if (code) { td.appendChild(el("code", {text: value})); } else { td.textContent = value; }
    table.appendChild(el("tr", {}, [el("th", {scope: "row", text: name}), td]));
  }

  function decisionRule(c) {
    if (c.threshold === null || c.threshold === undefined) { return "the most probable class"; }
    var rule = "P(" + c.positive_class + ") ≥ " + num(c.threshold);
    var op = c.operating_point;
    if (op) {
      rule += ", chosen on validation (" + op.method + (op.target ? " ≥ " + op.target : "") + ")";
    }
    return rule;
  }

  function inputsText(c) {
    var i = c.inputs || {};
    if (c.task === "image") {
      return i.channels + "-channel images, resized to " + i.resize_to + " px, centre crop " + i.image_size + " px";
    }
    var text = (i.alphabet || "").toUpperCase() + " sequences, encoded to " + i.max_len + " positions";
    if (c.limits && c.limits.max_sequence_length) { text += "; longest accepted " + c.limits.max_sequence_length; }
    return text;
  }

  function renderCard(c) {
    $("title").textContent = "biolens · " + c.run;
    $("subtitle").textContent = c.task + " model " + c.model + " · classes: " + c.classes.join(", ");
    var body = $("card-body");
    body.textContent = "";
    var t = el("table");
    row(t, "Task", c.task);
    row(t, "Model", c.model);
    row(t, "Classes", c.classes.join(", "));
    if (c.positive_class) { row(t, "Positive class", c.positive_class); }
    row(t, "Decision", decisionRule(c));
    row(t, "Temperature", num(c.temperature, 3));
    row(t, "Inputs", inputsText(c));
    row(t, "Data set fingerprint", c.dataset_fingerprint || "not recorded", !!c.dataset_fingerprint);
    row(t, "Trained", c.created || "–");
    if (c.best_epoch) { row(t, "Best epoch", String(c.best_epoch)); }
    if (c.versions && c.versions.biolens) { row(t, "biolens", c.versions.biolens); }
    if (c.git_commit) { row(t, "Git commit", c.git_commit + (c.git_dirty ? " (uncommitted changes)" : ""), true); }
    body.appendChild(t);
    ["test", "val"].forEach(function (split) {
      var m = c.metrics && c.metrics[split];
      if (!m) { return; }
      var level = m.ci_level ? Math.round(m.ci_level * 100) + "% CI" : "CI";
      var anyCi = m.values.some(function (v) { return !!v.ci; });
      body.appendChild(el("h3", {text: (split === "test" ? "Test" : "Validation") + " metrics (n = " + m.n + ", " +
                                       m.evaluated + ")"}));
      var header = [el("th", {scope: "col", text: "metric"}), el("th", {scope: "col", text: "value"})];
      if (anyCi) { header.push(el("th", {scope: "col", text: level})); }
      var mt = el("table", {"class": "metrics", "data-split": split}, [el("tr", {}, header)]);
      m.values.forEach(function (v) {
        var cells = [el("th", {scope: "row", title: v.description, text: v.name}),
                     el("td", {"class": "num", text: v.value === null ? "undefined" : num(v.value)})];
        if (anyCi) { cells.push(el("td", {"class": "num", text: v.ci ? num(v.ci[0]) + " – " + num(v.ci[1]) : ""})); }
        mt.appendChild(el("tr", {}, cells));
      });
      body.appendChild(mt);
      if (!anyCi && split === "test") {
        body.appendChild(el("p", {"class": "hint", text: "No confidence intervals yet: run `biolens evaluate` on " +
                                                        "this run folder to add them."}));
      }
    });
  }

  function setupForm(c) {
    var isImage = c.accepts === "files";
    $("image-input").hidden = !isImage;
    $("sequence-input").hidden = isImage;
    if (!isImage) {
      $("sequence-help").textContent = inputsText(c) + ". A FASTA header line starts with >; without headers " +
                                       "every line is one sequence.";
    }
    var method = $("method");
    method.textContent = "";
    if (c.explain && c.explain.methods.length) {
      c.explain.methods.forEach(function (m) { method.appendChild(el("option", {value: m, text: m})); });
      method.value = c.explain.default || c.explain.methods[0];
    } else {
      $("method-field").hidden = true;
    }
    method.appendChild(el("option", {value: "", text: "none (predictions only)"}));
    var target = $("target");
    c.classes.forEach(function (name) { target.appendChild(el("option", {value: name, text: name})); });
    $("submit").textContent = c.explain ? "Predict and explain" : "Predict";
    $("submit").disabled = false;
  }

  // ---- inputs -----------------------------------------------------------------------------------------------------
  function parseSequences(text) {
    var lines = text.split(/\r?\n/);
    var ids = [], seqs = [];
    var fasta = lines.some(function (l) { return l.trim().charAt(0) === ">"; });
    if (!fasta) {
      lines.forEach(function (l) {
        var s = l.replace(/\s+/g, "");
        if (s) { seqs.push(s); ids.push("seq" + seqs.length); }
      });
      return {ids: ids, sequences: seqs};
    }
    var current = null;
    lines.forEach(function (l, k) {
      var line = l.trim();
      if (!line) { return; }
      if (line.charAt(0) === ">") {
        current = {id: line.slice(1).trim().split(/\s+/)[0] || "seq" + (ids.length + 1), parts: []};
        ids.push(current.id);
        seqs.push(current);
      } else if (current === null) {
        throw new Error("line " + (k + 1) + ": sequence text before the first FASTA header (a line starting with >)");
      } else {
        current.parts.push(line.replace(/\s+/g, ""));
      }
    });
    return {ids: ids, sequences: seqs.map(function (s) { return s.parts.join(""); })};
  }

  function chooseFiles(list) {
    files = Array.prototype.slice.call(list || []);
    $("chosen").textContent = files.length ? files.length + " file(s): " + files.map(function (f) { return f.name; }).join(", ") : "";
  }

  // ---- results ----------------------------------------------------------------------------------------------------
  function bars(item) {
    var box = el("div", {"class": "bars", role: "group", "aria-label": "class probabilities"});
    card.classes.forEach(function (name) {
      var p = item.probabilities[name];
      var on = item.labels ? item.labels.indexOf(name) >= 0 : name === item.prediction;
      var bar = el("div", {"class": "bar" + (on ? " top" : ""), "aria-hidden": "true"},
                   [el("span")]);
      bar.firstChild.style.width = Math.max(0, Math.min(100, p * 100)).toFixed(1) + "%";
      box.appendChild(el("span", {text: name}));
      box.appendChild(bar);
      box.appendChild(el("span", {"class": "num", text: num(p, 3)}));
    });
    return box;
  }

  function track(ex, id) {
    var scores = ex.scores, n = scores.length;
    var w = Math.max(2, Math.min(14, Math.floor(960 / Math.max(n, 1))));
    var top = scores.reduce(function (a, s) { return Math.max(a, Math.abs(s)); }, 0) || 1;
    var signed = scores.some(function (s) { return s < 0; });
    var h = 90, base = signed ? h / 2 : h - 2, span = signed ? h / 2 - 2 : h - 4;
    var letters = w >= 8;
    var height = h + (letters ? 14 : 0);
    var best = 0;
    scores.forEach(function (s, i) { if (s > scores[best]) { best = i; } });
    var tw = ex.top_window;
    var root = svg("svg", {"class": "track", viewBox: "0 0 " + n * w + " " + height, width: n * w, height: height,
                           role: "img", "aria-label": ex.method + " attribution per base of " + id + " for class " +
                           ex.explained_class + "; highest at base " + (best + 1) + " (" + ex.sequence.charAt(best) +
                           "); top window: bases " + (tw.start + 1) + " to " + tw.end});
    root.appendChild(svg("rect", {x: tw.start * w, y: 0, width: (tw.end - tw.start) * w, height: h,
                                  fill: "#ffe08a", opacity: "0.55"}));
    scores.forEach(function (s, i) {
      var len = Math.abs(s) / top * span;
      root.appendChild(svg("rect", {x: i * w + (w > 3 ? 0.5 : 0), width: w > 3 ? w - 1 : w, height: Math.max(len, 0.5),
                                    y: s >= 0 ? base - len : base, fill: s >= 0 ? "#c0392b" : "#2471a3"}));
      if (letters) {
        var t = svg("text", {x: i * w + w / 2, y: h + 11, "text-anchor": "middle", "font-size": Math.min(11, w),
                             "font-family": "monospace", fill: "#1d2330"});
        t.textContent = ex.sequence.charAt(i);
        root.appendChild(t);
      }
    });
    root.appendChild(svg("line", {x1: 0, x2: n * w, y1: base, y2: base, stroke: "#5b6372", "stroke-width": "0.5"}));
    return el("div", {"class": "track-wrap"}, [root]);
  }

  function scoresLink(ex, id) {
    var lines = ["position,base,score"];
    ex.scores.forEach(function (s, i) { lines.push((i + 1) + "," + ex.sequence.charAt(i) + "," + s); });
    var url = URL.createObjectURL(new Blob([lines.join("\n") + "\n"], {type: "text/csv"}));
    return el("a", {href: url, download: id.replace(/[^A-Za-z0-9_.-]+/g, "_") + "." + ex.method + ".csv",
                    text: "Download the scores (CSV)"});
  }

  function explanation(item) {
    var ex = item.explanation;
    var box = el("div", {"class": "explanation"});
    var head = ex.method + " for class " + ex.explained_class + " (p = " + num(ex.probability, 3) + ")";
    box.appendChild(el("h4", {text: "What the model looked at: " + head}));
    if (ex.overlay_png) {
      var where = ex.peak ? "; the strongest evidence is at row " + ex.peak[0] + ", column " + ex.peak[1] :
        "; no region raises this class's score";
      box.appendChild(el("img", {"class": "overlay", src: ex.overlay_png,
                                 alt: "the image and the " + ex.method + " map over it" + where}));
      box.appendChild(el("p", {text: ex.peak ? "Peak of the map (original pixels): row " + ex.peak[0] + ", column " +
                                   ex.peak[1] + "." : "The map has no positive value: nothing in the image raises " +
                                   "the score of " + ex.explained_class + "."}));
    } else if (ex.scores) {
      var tw = ex.top_window;
      box.appendChild(track(ex, item.id));
      box.appendChild(el("p", {"class": "legend"}, [el("span", {"class": "p", text: "red"}), " raises, ",
        el("span", {"class": "n", text: "blue"}), " lowers the score of " + ex.explained_class +
        "; the shaded span is the top window."]));
      var seq = el("p", {"class": "seq", "aria-label": "sequence with the top window marked"});
      seq.appendChild(document.createTextNode(ex.sequence.slice(0, tw.start)));
      seq.appendChild(el("mark", {text: ex.sequence.slice(tw.start, tw.end)}));
      seq.appendChild(document.createTextNode(ex.sequence.slice(tw.end)));
      box.appendChild(seq);
      box.appendChild(el("p", {"class": "top-window", text: "Top window: bases " + (tw.start + 1) + "–" + tw.end +
                                                           " " + tw.subsequence + " (score " + num(tw.score, 3) + ")"}));
      box.appendChild(scoresLink(ex, item.id));
    }
    return box;
  }

  function renderResults(data) {
    var list = $("result-list");
    list.textContent = "";
    $("no-results").hidden = true;
    data.predictions.forEach(function (item, k) {
      var hid = "result-" + k;
      var art = el("article", {"class": "result", "aria-labelledby": hid});
      art.appendChild(el("h3", {id: hid, text: item.id}));
      if (item.values) {  // a regression model: one value per target, in the training data's units
        Object.keys(item.values).forEach(function (name) {
          art.appendChild(el("p", {"class": "prediction"}, [name + ": ", el("strong", {text: num(item.values[name], 4)})]));
        });
        list.appendChild(art);
        return;
      }
      if (item.labels) {  // a multi-label model: every label whose probability reaches its threshold
        art.appendChild(el("p", {"class": "prediction"},
          ["Labels: ", el("strong", {text: item.labels.length ? item.labels.join(", ") : "none"})]));
        art.appendChild(bars(item));
        list.appendChild(art);
        return;
      }
      art.appendChild(el("p", {"class": "prediction"}, ["Prediction: ", el("strong", {text: item.prediction})]));
      if (item.decision !== null && item.decision !== undefined) {
        var rule = "P(" + data.positive_class + ") ≥ " + num(data.threshold);
        art.appendChild(el("p", {"class": "decision " + (item.decision ? "positive" : "negative")},
          ["Decision at the operating point (" + rule + "): ",
           el("strong", {text: item.decision ? "positive (" + data.positive_class + ")" : "negative"})]));
      }
      art.appendChild(bars(item));
      if (item.explanation) { art.appendChild(explanation(item)); }
      list.appendChild(art);
    });
  }

  // ---- submit -----------------------------------------------------------------------------------------------------
  async function submit(event) {
    event.preventDefault();
    clearError();
    var method = $("method").value;
    var explain = !!(card.explain && method);
    var url = explain ? "v1/explain?method=" + encodeURIComponent(method) : "v1/predict";
    if (explain && $("target").value) { url += "&class=" + encodeURIComponent($("target").value); }
    var init = {method: "POST"};
    try {
      if (card.accepts === "files") {
        var form = new FormData();
        files.forEach(function (f) { form.append("files", f, f.name); });
        init.body = form;
      } else {
        var parsed = parseSequences($("sequences").value);
        init.headers = {"Content-Type": "application/json"};
        init.body = JSON.stringify({sequences: parsed.sequences, ids: parsed.ids});
      }
    } catch (e) {
      showError(e.message);
      return;
    }
    $("submit").disabled = true;
    $("result-list").textContent = "";  // what is shown always belongs to the inputs just sent
    $("no-results").hidden = false;
    setStatus(explain ? "Predicting and explaining…" : "Predicting…");
    try {
      var response = await fetch(url, init);
      var data = await response.json().catch(function () { return null; });
      if (!response.ok) {
        var msg = data && data.error ? data.error : "the server answered " + response.status;
        showError(msg + (data && data.field ? " (" + data.field + ")" : ""));
        setStatus("");
        return;
      }
      renderResults(data);
      setStatus(data.predictions.length + " result(s).");
      $("results").focus();
    } catch (e) {
      showError("no answer from the server (" + e.message + ")");
      setStatus("");
    } finally {
      $("submit").disabled = false;
    }
  }

  function init() {
    var drop = $("drop");
    $("files").addEventListener("change", function (e) { chooseFiles(e.target.files); });
    ["dragenter", "dragover"].forEach(function (t) {
      drop.addEventListener(t, function (e) { e.preventDefault(); drop.classList.add("over"); });
    });
    ["dragleave", "drop"].forEach(function (t) {
      drop.addEventListener(t, function (e) { e.preventDefault(); drop.classList.remove("over"); });
    });
    drop.addEventListener("drop", function (e) { chooseFiles(e.dataTransfer.files); });
    $("form").addEventListener("submit", submit);
    fetch("v1/card").then(function (r) {
      if (!r.ok) { throw new Error("the server answered " + r.status); }
      return r.json();
    }).then(function (c) {
      card = c;
      renderCard(c);
      setupForm(c);
    }).catch(function (e) {
      $("subtitle").textContent = "";
      showError("cannot read the model card: " + e.message);
    });
  }

  init();
}());
