// sqlgate analysts' form: feedback on the answer shown (👍, 👎, "correct it") and where a verified answer came
// from ("verified by alice on 3 Dec"). Plain ES2020; text from the server goes in with textContent only.
// app.js tells this file about answers with the `sqlgate:answer` and `sqlgate:cleared` events.
"use strict";

(() => {
  const FEEDBACK_PATH = "/v1/feedback";
  const REQUEST_TIMEOUT_MS = 30000;

  const byId = (id) => document.getElementById(id);

  /** "3 Dec" (with the year when it is not this year), from an ISO time; null when it does not read as one. */
  function shortDate(iso, now = new Date()) {
    const when = new Date(typeof iso === "string" ? iso : "");
    if (Number.isNaN(when.getTime())) return null;
    const options = { day: "numeric", month: "short", timeZone: "UTC" };
    if (when.getUTCFullYear() !== now.getUTCFullYear()) options.year = "numeric";
    return when.toLocaleDateString("en-GB", options);
  }

  /** "Verified by alice on 3 Dec", from the check's `memory`; null when the answer is not a verified one. */
  function verifiedText(check, now = new Date()) {
    if (!check || check.source !== "verified" || !check.memory || typeof check.memory !== "object") return null;
    const who = typeof check.memory.verified_by === "string" && check.memory.verified_by
      ? check.memory.verified_by : "a colleague";
    const day = shortDate(check.memory.verified_at, now);
    const how = check.memory.origin === "correction" ? "Corrected" : "Verified";
    const rebound = check.memory.rebound === true ? " (with this question's values)" : "";
    return `${how} by ${who}${day ? ` on ${day}` : ""}${rebound}`;
  }

  /** What a failed rating says to the analyst. */
  function ratingFailure(status, body) {
    const error = body && typeof body.error === "object" && body.error !== null ? body.error : {};
    const code = typeof error.code === "string" ? error.code : "";
    if (status === 401) return "Your API key was not accepted, so the rating was not kept.";
    if (status === 404 || code === "not_found") {
      return "This answer is no longer kept, so it can't be rated. Ask again and rate the new answer.";
    }
    if (status === 429) return "Too many requests: wait a moment, then rate again.";
    if (status === 503) return "The feedback store is unavailable; nothing was kept. Try again in a moment.";
    return typeof error.message === "string" && error.message ? error.message : `Not kept (status ${status}).`;
  }

  document.addEventListener("DOMContentLoaded", () => {
    const panel = byId("feedback");
    const note = byId("verified-note");
    const up = byId("feedback-up");
    const down = byId("feedback-down");
    const correctIt = byId("correct-it");
    const form = byId("correction-form");
    const correction = byId("correction");
    const correctionError = byId("correction-error");
    const correctionReasons = byId("correction-reasons");
    const save = byId("save-correction");
    const cancel = byId("cancel-correction");
    const status = byId("feedback-status");
    const keyInput = byId("api-key");

    let answer = null; // the /v1/sql answer shown
    let sending = false;

    function setStatus(text) {
      status.textContent = text;
    }

    function setPressed(rating) {
      up.setAttribute("aria-pressed", String(rating === "up"));
      down.setAttribute("aria-pressed", String(rating === "down"));
    }

    function showCorrectionError(message, reasons) {
      correctionError.textContent = message;
      correctionError.hidden = !message;
      correctionReasons.replaceChildren(...reasons.map((reason) => {
        const item = document.createElement("li");
        item.textContent = reason;
        return item;
      }));
      correctionReasons.hidden = reasons.length === 0;
      if (message) correction.setAttribute("aria-invalid", "true");
      else correction.removeAttribute("aria-invalid");
    }

    function openCorrection(open) {
      form.hidden = !open;
      correctIt.setAttribute("aria-expanded", String(open));
      if (open) {
        if (!correction.value && answer) correction.value = answer.sql;
        correction.focus();
      } else {
        showCorrectionError("", []);
      }
    }

    function reset() {
      answer = null;
      panel.hidden = true;
      note.hidden = true;
      note.textContent = "";
      correction.value = "";
      openCorrection(false);
      setPressed(null);
      setStatus("");
    }

    document.addEventListener("sqlgate:answer", (event) => {
      reset();
      answer = event.detail && event.detail.answer;
      if (!answer || typeof answer.id !== "string") return; // an answer without an id can't be rated
      const verified = verifiedText(answer.check);
      if (verified) {
        note.textContent = verified;
        note.hidden = false;
      }
      panel.hidden = false;
    });
    document.addEventListener("sqlgate:cleared", reset);

    async function send(rating, correctedSql) {
      if (!answer || sending) return null;
      sending = true;
      const controller = new AbortController();
      const timer = window.setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
      const body = { id: answer.id, rating };
      if (correctedSql) body.corrected_sql = correctedSql;
      try {
        const response = await fetch(FEEDBACK_PATH, {
          method: "POST",
          headers: { "content-type": "application/json", authorization: `Bearer ${keyInput.value.trim()}` },
          body: JSON.stringify(body),
          signal: controller.signal,
          cache: "no-store",
          credentials: "omit",
        });
        let reply = null;
        try {
          reply = await response.json();
        } catch (_err) {
          reply = null;
        }
        return { status: response.status, ok: response.ok, body: reply };
      } catch (_err) {
        return { status: 0, ok: false, body: null };
      } finally {
        window.clearTimeout(timer);
        sending = false;
      }
    }

    async function rate(rating) {
      setStatus("Saving your rating…");
      const result = await send(rating, null);
      if (!result) return;
      if (!result.ok) {
        setStatus(result.status === 0 ? "Could not reach sqlgate; the rating was not kept."
          : ratingFailure(result.status, result.body));
        return;
      }
      setPressed(rating);
      const retired = result.body && result.body.retired > 0;
      setStatus(rating === "up"
        ? "Thanks: this answer is now a verified query. The same question gets it again, checked, without the model."
        : retired ? "Thanks: the verified query behind this answer was retired."
          : "Thanks: noted. Use \u201cCorrect it\u201d to give the right SQL.");
    }

    up.addEventListener("click", () => rate("up"));
    down.addEventListener("click", () => rate("down"));
    correctIt.addEventListener("click", () => openCorrection(form.hidden));
    cancel.addEventListener("click", () => openCorrection(false));

    save.addEventListener("click", async () => {
      const sql = correction.value.trim();
      if (!sql) {
        showCorrectionError("Write the SQL that answers the question.", []);
        correction.focus();
        return;
      }
      showCorrectionError("", []);
      setStatus("Checking the corrected SQL…");
      const result = await send("down", sql);
      if (!result) return;
      if (result.ok) {
        setPressed("down");
        openCorrection(false);
        setStatus("Thanks: your correction passed the check and now answers this question.");
        return;
      }
      setStatus("");
      const error = result.body && result.body.error && typeof result.body.error === "object"
        ? result.body.error : null;
      if (result.status === 422 && error && error.param === "corrected_sql") {
        const problems = error.check && Array.isArray(error.check.problems) ? error.check.problems : [];
        const reasons = problems.map((p) => (p && typeof p.message === "string" ? p.message : ""))
          .filter((message) => message !== "");
        showCorrectionError("The corrected SQL did not pass the check, so it was not kept.", reasons);
        correction.focus();
        return;
      }
      showCorrectionError(result.status === 0 ? "Could not reach sqlgate; the correction was not kept."
        : ratingFailure(result.status, result.body), []);
    });
  });

  // Exposed for the browser tests.
  window.sqlgateFeedback = Object.freeze({ verifiedText, shortDate });
})();
