/* Campaign composer and monitor helpers. Plain JavaScript, no framework; HTMX does the requests.
 *
 * - live character counters for every input with data-limit (the limits of messaging.rich_content);
 * - the SMS meter: encoding, characters and segments, the same rules as messaging.sms_text.measure_sms
 *   (GSM-7 160/153 with the extension table counting double, otherwise UCS-2 70/67 in UTF-16 units),
 *   of the text as sent: each {{link:…}} counted as the example short URL the server gives
 *   (data-short-link-example, core.short_links), like validate_sms_text;
 * - personalisation tokens inserted at the cursor of the last focused text field;
 * - confirmation for dangerous buttons (data-confirm) and <dialog> openers (data-open-dialog);
 * - uploads: a file over its kind's limit refused before sending, and a real upload progress bar.
 * The server validates everything again; this only helps while typing.
 */
(function () {
  "use strict";

  var GSM7_BASIC = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  var GSM7_EXTENSION = "^{}\\[~]|€\f";
  var lang = (document.documentElement.lang || "ja").slice(0, 2);
  var T = {
    ja: { chars: "文字", segment: "通", over: "上限を超えています", left: "残り" },
    en: { chars: "characters", segment: "segment(s)", over: "over the limit", left: "left" }
  }[lang === "ja" ? "ja" : "en"];

  function codePoints(text) { return Array.from(text || ""); }

  function measureSms(text) {
    var chars = codePoints(text);
    var gsm = chars.every(function (ch) { return GSM7_BASIC.indexOf(ch) >= 0 || GSM7_EXTENSION.indexOf(ch) >= 0; });
    var units, single, multi, encoding;
    if (gsm) {
      units = chars.reduce(function (n, ch) { return n + (GSM7_EXTENSION.indexOf(ch) >= 0 ? 2 : 1); }, 0);
      single = 160; multi = 153; encoding = "GSM-7";
    } else {
      units = (text || "").length; // UTF-16 code units, like the server
      single = 70; multi = 67; encoding = "UCS-2";
    }
    var segments = units <= single ? (units ? 1 : 0) : Math.ceil(units / multi);
    return { encoding: encoding, characters: chars.length, units: units, segments: segments,
             perSegment: units <= single ? single : multi };
  }
  window.measureSms = measureSms;

  // The same pattern as core.short_links.LINK_PLACEHOLDER.
  var LINK_PLACEHOLDER = /\{\{\s*link\s*:([^\n{}]*)\}\}/gi;
  function textAsSent(text, example) {
    if (!example || !text || text.indexOf("{{") < 0) return text;
    return text.replace(LINK_PLACEHOLDER, function () { return example; });
  }

  function updateCounter(input) {
    var field = input.closest(".field");
    var counter = field && field.querySelector(".counter");
    if (!counter) return;
    var limit = parseInt(input.getAttribute("data-limit"), 10);
    var length = codePoints(input.value).length;
    counter.textContent = length + " / " + limit;
    counter.classList.toggle("near", length >= limit * 0.9 && length <= limit);
    counter.classList.toggle("over", length > limit);
    field.classList.toggle("over-limit", length > limit);
  }

  function updateSmsMeter(textarea) {
    var meter = document.querySelector('[data-sms-meter-for="' + textarea.id + '"]');
    if (!meter) return;
    var limit = parseInt(textarea.getAttribute("data-sms-limit"), 10) || 660;
    var m = measureSms(textAsSent(textarea.value, textarea.getAttribute("data-short-link-example")));
    meter.querySelector(".enc").textContent = m.encoding;
    meter.querySelector(".chars").textContent = m.characters + " / " + limit + " " + T.chars;
    meter.querySelector(".segs").textContent = m.segments + " " + T.segment + " (" + m.perSegment + "/" + T.segment + ")";
    meter.classList.toggle("over", m.characters > limit);
    textarea.closest(".field").classList.toggle("over-limit", m.characters > limit);
  }

  function refreshAll(root) {
    (root || document).querySelectorAll("[data-limit]").forEach(updateCounter);
    (root || document).querySelectorAll("[data-sms-limit]").forEach(updateSmsMeter);
  }

  var lastFocused = null;
  document.addEventListener("focusin", function (event) {
    var el = event.target;
    if (el.matches && el.matches("#composer-form textarea, #composer-form input[type=text]")) lastFocused = el;
  });

  document.addEventListener("input", function (event) {
    var el = event.target;
    if (el.hasAttribute && el.hasAttribute("data-limit")) updateCounter(el);
    if (el.hasAttribute && el.hasAttribute("data-sms-limit")) updateSmsMeter(el);
  });

  document.addEventListener("click", function (event) {
    var token = event.target.closest("[data-insert]");
    if (token) {
      event.preventDefault();
      var target = lastFocused || document.querySelector("#composer-form [name=text]");
      if (!target) return;
      var value = token.getAttribute("data-insert");
      var start = target.selectionStart == null ? target.value.length : target.selectionStart;
      var end = target.selectionEnd == null ? target.value.length : target.selectionEnd;
      target.value = target.value.slice(0, start) + value + target.value.slice(end);
      target.focus();
      target.setSelectionRange(start + value.length, start + value.length);
      target.dispatchEvent(new Event("input", { bubbles: true }));
      return;
    }
    var opener = event.target.closest("[data-open-dialog]");
    if (opener) {
      var dialog = document.getElementById(opener.getAttribute("data-open-dialog"));
      if (dialog && dialog.showModal) { dialog.showModal(); }
      return;
    }
    var closer = event.target.closest("[data-close-dialog]");
    if (closer) {
      var open = closer.closest("dialog");
      if (open) open.close();
      return;
    }
    var confirmButton = event.target.closest("[data-confirm]");
    if (confirmButton && !window.confirm(confirmButton.getAttribute("data-confirm"))) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // Enter in a one-line field must not press the first submit button of the form (an “add card”).
  document.addEventListener("keydown", function (event) {
    var el = event.target;
    if (event.key === "Enter" && el.tagName === "INPUT" && el.type !== "submit" && el.closest("#composer-form")) {
      event.preventDefault();
    }
  });

  document.addEventListener("change", function (event) {
    var select = event.target.closest(".sugg-type");
    if (select) select.closest(".sugg").setAttribute("data-type", select.value);
  });

  // Warn before leaving the composer with unsaved changes (uploads are stored, but their URL is not yet saved).
  var dirty = false;
  document.addEventListener("input", function (event) {
    if (event.target.closest && event.target.closest("#composer-form")) dirty = true;
  });
  document.addEventListener("submit", function (event) {
    if (event.target.id === "composer-form") dirty = false;
  });
  window.addEventListener("beforeunload", function (event) {
    if (dirty) { event.preventDefault(); event.returnValue = ""; }
  });

  document.addEventListener("DOMContentLoaded", function () { refreshAll(document); });
  document.addEventListener("htmx:afterSettle", function (event) {
    // The preview answers with the SMS limit of the chosen official account's gateway.
    var source = document.getElementById("sms-limit-source");
    if (source) {
      document.querySelectorAll("[data-sms-limit]").forEach(function (textarea) {
        textarea.setAttribute("data-sms-limit", source.getAttribute("data-limit"));
      });
    }
    refreshAll(document);
  });
  // Uploads. Before sending, a file above its kind's limit (the server's own limits, written on the
  // slot as data-max-image / -video / -file) is refused at once instead of after minutes of upload;
  // while it uploads, the XHR's upload progress (htmx:xhr:progress) fills the slot's progress bar.
  function fileKind(file) {
    var type = (file.type || "").toLowerCase();
    if (type.indexOf("video/") === 0) return "video";
    if (type === "application/pdf") return "file";
    return "image";
  }
  function megabytes(bytes) { return (Math.round(bytes / 104857.6) / 10).toLocaleString(lang === "ja" ? "ja-JP" : "en-US"); }
  function uploadSlot(event) {
    var input = event.target;
    if (!input || input.type !== "file" || !input.closest) return null;
    return input.closest(".media-slot");
  }
  document.addEventListener("htmx:beforeRequest", function (event) {
    var slot = uploadSlot(event);
    if (!slot) return;
    var refused = slot.querySelector(".upload-refused");
    var file = event.target.files && event.target.files[0];
    if (file && refused) {
      var kind = fileKind(file);
      var limit = parseInt(slot.getAttribute("data-max-" + kind), 10);
      if (limit && file.size > limit) {
        event.preventDefault();
        refused.textContent = refused.getAttribute("data-message")
          .replace("{size}", megabytes(file.size))
          .replace("{kind}", refused.getAttribute("data-kind-" + kind) || kind)
          .replace("{limit}", megabytes(limit));
        refused.hidden = false;
        event.target.value = "";
        return;
      }
      refused.hidden = true;
    }
    slot.classList.add("uploading");
    var box = slot.querySelector(".upload-progress");
    if (box) {
      box.hidden = false;
      box.querySelector("progress").value = 0;
      box.querySelector(".upload-percent").textContent = "0%";
    }
  });
  document.addEventListener("htmx:xhr:progress", function (event) {
    var slot = uploadSlot(event);
    var box = slot && slot.querySelector(".upload-progress");
    if (!box || !event.detail.lengthComputable || !event.detail.total) return;
    var bar = box.querySelector("progress");
    var percent = Math.floor(100 * event.detail.loaded / event.detail.total);
    // The response's download reports progress too, from 0 again: the bar only moves forward.
    if (percent > bar.value) {
      bar.value = percent;
      box.querySelector(".upload-percent").textContent = percent + "%";
    }
  });
})();
