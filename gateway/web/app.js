// sqlgate analysts' form: plain ES2020, no build step, no third-party code.
// Every piece of text that came from the user, the model or the server is put in the page with textContent or
// text nodes, never parsed as HTML.
"use strict";

(() => {
  const API_PATH = "/v1/sql";
  const KEY_STORAGE = "sqlgate.apiKey";
  const DIALECT_STORAGE = "sqlgate.dialect";
  // Drafts live in sessionStorage: they survive a reload of the tab but not a closed browser, because a
  // question can name customers and the form may be used on a shared machine.
  const DRAFT_STORAGE = "sqlgate.draft";
  // The gateway has its own upstream timeouts; this only stops the page from waiting forever on a lost reply.
  const REQUEST_TIMEOUT_MS = 120000;

  // The seed document's examples (shared/seeds), plus the write the gateway must refuse.
  const EXAMPLES = [
    {
      name: "Aggregation",
      schema: "CREATE TABLE singer (Singer_ID int, Name text, Country text, Song_Name text)",
      question: "How many singers do we have?",
    },
    {
      name: "Filtering",
      schema: "CREATE TABLE employee (Employee_ID int, Name text, Department text, Salary real)",
      question: "Find all employees in the Engineering department with a salary above 80000.",
    },
    {
      name: "Join",
      schema:
        "CREATE TABLE student (StuID int, Fname text, LName text)\n" +
        "CREATE TABLE lives_in (stuid int, dormid int)\n" +
        "CREATE TABLE dorm (dormid int, dorm_name text)",
      question: "List each student's name and the dorm they live in.",
    },
  ];

  // ---- SQL highlighting ---------------------------------------------------------------------------------

  const KEYWORDS = new Set(
    (
      "ADD ALL ALTER AND ANY AS ASC BETWEEN BY CASE CAST COLLATE CREATE CROSS CURRENT_DATE CURRENT_TIME " +
      "CURRENT_TIMESTAMP DATABASE DEFAULT DELETE DESC DISTINCT DROP ELSE END ESCAPE EXCEPT EXISTS FALSE " +
      "FETCH FILTER FIRST FOLLOWING FOR FROM FULL GLOB GRANT GROUP HAVING IF ILIKE IN INDEX INNER INSERT " +
      "INTERSECT INTERVAL INTO IS JOIN KEY LAST LATERAL LEFT LIKE LIMIT MERGE NATURAL NOT NULL NULLS OFFSET " +
      "ON OR ORDER OUTER OVER PARTITION PRECEDING PRIMARY QUALIFY RANGE RECURSIVE REFERENCES REGEXP RENAME " +
      "REPLACE RETURNING RIGHT ROLLUP ROW ROWS SELECT SET TABLE THEN TO TOP TRUE TRUNCATE UNBOUNDED UNION " +
      "UNIQUE UNNEST UPDATE USING VALUES VIEW WHEN WHERE WINDOW WITH"
    ).split(" "),
  );

  // One alternative per token kind, tried in this order at each position (sticky, so no character is skipped).
  const TOKEN_PATTERN = new RegExp(
    [
      "(?<space>\\s+)",
      "(?<comment>--[^\\n]*|\\/\\*[\\s\\S]*?(?:\\*\\/|$))",
      "(?<string>'(?:[^']|'')*(?:'|$))",
      "(?<quoted>\"(?:[^\"]|\"\")*(?:\"|$)|`[^`]*(?:`|$)|\\[[^\\]\\n]*\\])",
      "(?<number>(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][+-]?\\d+)?)",
      "(?<word>[A-Za-z_\\u00C0-\\uFFFF][A-Za-z0-9_$\\u00C0-\\uFFFF]*)",
      "(?<param>[@:?$][A-Za-z0-9_]*)",
      "(?<operator><>|<=|>=|!=|==|\\|\\||::|[-+*/%=<>!~^&|])",
      "(?<punct>[(),;.])",
      "(?<other>[\\s\\S])",
    ].join("|"),
    "uy",
  );

  /** Split SQL text into {type, text} tokens whose texts concatenate back to the input exactly. */
  function tokenizeSql(sql) {
    const tokens = [];
    TOKEN_PATTERN.lastIndex = 0;
    let match;
    while (TOKEN_PATTERN.lastIndex < sql.length && (match = TOKEN_PATTERN.exec(sql)) !== null) {
      const [type, text] = Object.entries(match.groups).find(([, value]) => value !== undefined);
      tokens.push({ type, text });
    }
    // Words become keywords, function names or identifiers; that needs the token after them.
    for (let i = 0; i < tokens.length; i += 1) {
      const token = tokens[i];
      if (token.type !== "word") continue;
      if (KEYWORDS.has(token.text.toUpperCase())) {
        token.type = "keyword";
        continue;
      }
      let next = i + 1;
      while (next < tokens.length && tokens[next].type === "space") next += 1;
      const calls = next < tokens.length && tokens[next].text === "(";
      token.type = calls ? "function" : "identifier";
    }
    for (const token of tokens) {
      if (token.type === "quoted") token.type = "identifier";
    }
    return tokens;
  }

  /** Replace `target`'s children with highlighted SQL built from text nodes (no HTML parsing). */
  function renderSql(target, sql) {
    const fragment = document.createDocumentFragment();
    for (const token of tokenizeSql(sql)) {
      if (token.type === "space" || token.type === "other") {
        fragment.appendChild(document.createTextNode(token.text));
        continue;
      }
      const span = document.createElement("span");
      span.className = `tok tok-${token.type}`;
      span.textContent = token.text;
      fragment.appendChild(span);
    }
    target.replaceChildren(fragment);
  }

  // ---- small helpers ---------------------------------------------------------------------------------------

  const byId = (id) => document.getElementById(id);
  const formatCount = (n) => n.toLocaleString("en-US");

  function readStorage(storage, key) {
    try {
      return storage.getItem(key);
    } catch (_err) {
      return null; // storage can be disabled by browser policy; the form still works without it
    }
  }

  function writeStorage(storage, key, value) {
    try {
      if (value === null) storage.removeItem(key);
      else storage.setItem(key, value);
    } catch (_err) {
      // Same as above: remembering is a convenience, never a requirement.
    }
  }

  function plural(n, one, many) {
    return `${formatCount(n)} ${n === 1 ? one : many}`;
  }

  /** Valid means valid: the check said so in as many words, and did not say the SQL fails to compile. */
  function passedCheck(check) {
    return Boolean(check) && check.valid === true && check.compiled !== false;
  }

  // ---- error descriptions --------------------------------------------------------------------------------

  // Which form field an error's `param` points at.
  const PARAM_FIELDS = {
    question: "question",
    prompt: "question",
    messages: "question",
    schema: "schema",
    context: "schema",
    dialect: "dialect",
  };

  function fieldForParam(param) {
    if (typeof param !== "string" || param === "") return null;
    const last = param.split(".").pop();
    return PARAM_FIELDS[last] || null;
  }

  function retryAfterSeconds(headers) {
    const raw = headers ? headers.get("retry-after") : null;
    if (!raw) return null;
    const seconds = Number(raw);
    if (Number.isFinite(seconds) && seconds >= 0) return Math.ceil(seconds);
    const when = Date.parse(raw); // Retry-After may also be an HTTP date
    return Number.isNaN(when) ? null : Math.max(0, Math.ceil((when - Date.now()) / 1000));
  }

  function checkReasons(check, fallback) {
    const problems = check && Array.isArray(check.problems) ? check.problems : [];
    const reasons = problems
      .map((problem) => (problem && typeof problem.message === "string" ? problem.message : ""))
      .filter((message) => message !== "");
    if (reasons.length === 0 && fallback) reasons.push(fallback);
    // A low-confidence refusal names the queries that competed, so the analyst can pick one knowingly.
    const competing = check && Array.isArray(check.competing) ? check.competing : [];
    for (const entry of competing) {
      if (entry && typeof entry.query === "string" && Number.isInteger(entry.votes)) {
        reasons.push(`${entry.votes} of the candidates: ${entry.query}`);
      }
    }
    return reasons;
  }

  /** "Tables considered (3 of 200): a, b, c" from the check's schema_scope; null without one. */
  function scopeText(scope) {
    if (!scope || !Array.isArray(scope.tables_sent) || !Number.isInteger(scope.tables_total)) return null;
    const names = scope.tables_sent.filter((name) => typeof name === "string");
    if (names.length === 0) return null;
    const count = names.length === scope.tables_total ? `all ${scope.tables_total}`
      : `${names.length} of ${scope.tables_total}`;
    return `Tables considered (${count}): ${names.join(", ")}`;
  }

  /** "7 of 8 candidate queries agree", from the check's agreement; null when no vote ran. */
  function agreementText(agreement) {
    if (!agreement || !Number.isInteger(agreement.candidates) || !Number.isInteger(agreement.agreeing)
        || agreement.candidates < 1) {
      return null;
    }
    const verb = agreement.agreeing === 1 ? "agrees" : "agree";
    return `${agreement.agreeing} of ${agreement.candidates} candidate queries ${verb}`;
  }

  // 422 refusals of the model's SQL (docs/contract.md): a title and what to do; the reasons come from the check.
  const REFUSALS = {
    unsafe_sql: ["SQL blocked: it would change data",
      "The model wrote SQL that is not read-only, so the gateway refused it. Rephrase the question as " +
      "something to look up."],
    invalid_sql: ["The model's SQL did not pass the check",
      "It is not one SQL statement that runs against your schema. Try rephrasing the question, or check " +
      "that the schema is complete."],
    ungrounded_sql: ["The SQL uses tables or columns your schema does not have",
      "The model named tables or columns that are not in the schema you pasted. Check that the schema is " +
      "complete, or rephrase the question with the names it has."],
    unanswerable_sql: ["This question can't be answered from this schema",
      "The model found nothing in the schema that answers it. Check that you pasted the right tables."],
    truncated_sql: ["The model's answer was cut off",
      "It stopped before the SQL was complete. Try a shorter question, or keep only the tables it needs."],
    untranslatable_sql: ["The SQL can't be written for your database",
      "The model's SQL uses something your database has no faithful equivalent for. Rephrase the question, " +
      "or pick another database to see the SQL there."],
    unverifiable_sql: ["Part of your schema could not be read",
      "The SQL reads a table whose definition the gateway could not read, so it can't vouch for it. Check " +
      "that statement (the reasons quote it), or paste the plain CREATE TABLE."],
    expensive_sql: ["The SQL would be too costly to run",
      "It asks for huge output or work without end (a string built millions of characters long, a " +
      "recursion with no stop, tables multiplied with no join). Rephrase the question."],
    low_confidence: ["The candidate queries disagree",
      "Too few of the queries the model wrote agree on what this question returns for the gateway to pick " +
      "one. Make the question more specific, or see the competing queries."],
  };

  /**
   * Turn a failed reply into what the page shows: a title, a detail line, maybe a field to point at,
   * reasons to list and the SQL that was refused.
   */
  function describeFailure(status, body, headers) {
    const error = body && typeof body.error === "object" && body.error !== null ? body.error : {};
    const code = typeof error.code === "string" ? error.code : null;
    const serverMessage = typeof error.message === "string" ? error.message : "";
    const field = fieldForParam(error.param);
    const requestId = headers ? headers.get("x-request-id") : null;
    const out = { title: "", detail: "", field: null, fieldMessage: "", reasons: [], check: null, requestId };

    if (status === 401 || code === "missing_api_key" || code === "invalid_api_key") {
      out.field = "api-key";
      if (code === "missing_api_key") {
        out.title = "API key needed";
        out.detail = "Enter the API key you were given, then try again.";
        out.fieldMessage = "Enter your API key.";
      } else {
        out.title = "API key not accepted";
        out.detail = "The gateway did not recognise this key. Check it for typos, or ask the sqlgate admin " +
          "for a new one.";
        out.fieldMessage = "This key was not accepted.";
      }
      return out;
    }
    if (status === 429) {
      const seconds = retryAfterSeconds(headers);
      out.title = "Too many requests";
      out.detail = seconds === null
        ? "You have reached the request limit. Wait a moment, then try again."
        : `You have reached the request limit. Try again in ${plural(seconds, "second", "seconds")}.`;
      out.retryAfter = seconds;
      return out;
    }
    if (code in REFUSALS) {
      out.check = error.check && typeof error.check === "object" ? error.check : null;
      out.reasons = checkReasons(out.check, serverMessage);
      [out.title, out.detail] = REFUSALS[code];
      return out;
    }

    const fieldCopy = {
      question_too_long: ["Question is too long", "question"],
      empty_question: ["Question is empty", "question"],
      schema_too_long: ["Schema is too long", "schema"],
      missing_schema: ["Schema is missing", "schema"],
      context_length_exceeded: ["Too long for the model", "schema"],
      body_too_large: ["Request is too large", "schema"],
      unsupported_dialect: ["Dialect not supported", "dialect"],
      unknown_table: ["No such table in the schema", "tables"],
      schema_too_large: ["Too many tables to include", "tables"],
    };
    if (code in fieldCopy || status === 413 || (status >= 400 && status < 500 && field)) {
      const [title, defaultField] = fieldCopy[code] || ["Check the form", "schema"];
      out.title = status === 413 && !(code in fieldCopy) ? "Request is too large" : title;
      out.field = field || defaultField;
      out.fieldMessage = serverMessage || "This value was not accepted.";
      out.detail = code === "context_length_exceeded"
        ? "The schema and question together are more than the model can read. Keep only the tables the " +
          "question needs."
        : "Fix the highlighted field, then try again.";
      return out;
    }
    if (status === 502) {
      out.title = "The model server gave a bad answer";
      out.detail = "Try again. If it keeps happening, tell the sqlgate admin.";
    } else if (status === 503) {
      const seconds = retryAfterSeconds(headers);
      out.title = "The model server is unavailable";
      out.detail = "It may be restarting or down. Try again" +
        (seconds === null ? " in a minute." : ` in ${plural(seconds, "second", "seconds")}.`);
    } else if (status === 504) {
      out.title = "The model took too long";
      out.detail = "The model server did not answer in time. Try again; a shorter schema also helps.";
    } else if (status >= 500) {
      out.title = "Something went wrong in the gateway";
      out.detail = "Try again. If it keeps happening, send the reference below to the sqlgate admin.";
    } else {
      out.title = "The request was not accepted";
      out.detail = serverMessage || `The gateway answered with status ${status}.`;
    }
    return out;
  }

  // ---- the page --------------------------------------------------------------------------------------------

  document.addEventListener("DOMContentLoaded", () => {
    const form = byId("sql-form");
    const keyInput = byId("api-key");
    const toggleKey = byId("toggle-key");
    const forgetKey = byId("forget-key");
    const schemaInput = byId("schema");
    const questionInput = byId("question");
    const dialectSelect = byId("dialect");
    const submitButton = byId("submit");
    const submitLabel = byId("submit-label");
    const loadExample = byId("load-example");
    const copyButton = byId("copy-sql");
    const copyLabel = byId("copy-label");
    const copyFallback = byId("copy-fallback");
    const resultCard = byId("result-card");
    const statusLine = byId("status");
    const errorBox = byId("error");
    const emptyState = byId("empty-state");
    const sqlPanel = byId("sql-panel");
    const sqlCaption = byId("sql-caption");
    const sqlCode = byId("sql-code");
    const badges = byId("badges");
    const notes = byId("notes");
    const meta = byId("meta");
    const showFailing = byId("show-failing");
    const scopeLine = byId("scope");

    const fields = {
      "api-key": { input: keyInput, error: byId("api-key-error") },
      schema: { input: schemaInput, error: byId("schema-error") },
      question: { input: questionInput, error: byId("question-error") },
      dialect: { input: dialectSelect, error: byId("dialect-error") },
      tables: { input: byId("tables"), error: byId("tables-error") },
    };
    const counters = [
      { input: schemaInput, counter: byId("schema-counter") },
      { input: questionInput, counter: byId("question-counter") },
    ];

    let busy = false;
    let copyableSql = "";
    let exampleIndex = 0;
    let copyResetTimer = null;

    // -- restore what the user had --
    keyInput.value = readStorage(window.localStorage, KEY_STORAGE) || "";
    const savedDialect = readStorage(window.localStorage, DIALECT_STORAGE);
    if (savedDialect && [...dialectSelect.options].some((option) => option.value === savedDialect)) {
      dialectSelect.value = savedDialect;
    }
    try {
      const draft = JSON.parse(readStorage(window.sessionStorage, DRAFT_STORAGE) || "null");
      if (draft && typeof draft === "object") {
        if (typeof draft.schema === "string" && schemaInput.value === "") schemaInput.value = draft.schema;
        if (typeof draft.question === "string" && questionInput.value === "") questionInput.value = draft.question;
      }
    } catch (_err) {
      // A corrupt draft is dropped; the form simply starts empty.
    }

    const isMac = /Mac|iPhone|iPad/.test(navigator.platform || navigator.userAgent || "");
    if (isMac) byId("shortcut-hint").replaceChildren(kbd("⌘"), document.createTextNode(" + "), kbd("Enter"));
    submitButton.title = `Generate SQL (${isMac ? "⌘" : "Ctrl"}+Enter)`;

    function kbd(text) {
      const element = document.createElement("kbd");
      element.textContent = text;
      return element;
    }

    // -- counters and drafts --
    function updateCounter({ input, counter }) {
      const limit = Number(input.dataset.limit);
      const length = input.value.length;
      const over = length - limit;
      counter.textContent = over > 0
        ? `${formatCount(length)} / ${formatCount(limit)} · ${formatCount(over)} over`
        : `${formatCount(length)} / ${formatCount(limit)}`;
      counter.classList.toggle("is-over", over > 0);
      counter.classList.toggle("is-near", over <= 0 && length >= limit * 0.9);
    }

    function saveDraft() {
      writeStorage(window.sessionStorage, DRAFT_STORAGE,
        JSON.stringify({ schema: schemaInput.value, question: questionInput.value }));
    }

    for (const entry of counters) {
      updateCounter(entry);
      entry.input.addEventListener("input", () => {
        updateCounter(entry);
        clearFieldError(entry.input === schemaInput ? "schema" : "question");
        saveDraft();
      });
    }
    dialectSelect.addEventListener("change", () => {
      writeStorage(window.localStorage, DIALECT_STORAGE, dialectSelect.value);
      clearFieldError("dialect");
    });

    // -- the key --
    keyInput.addEventListener("input", () => {
      const key = keyInput.value.trim();
      writeStorage(window.localStorage, KEY_STORAGE, key === "" ? null : key);
      clearFieldError("api-key");
    });
    toggleKey.addEventListener("click", () => {
      const show = keyInput.type === "password";
      keyInput.type = show ? "text" : "password";
      toggleKey.textContent = show ? "Hide" : "Show";
      toggleKey.setAttribute("aria-pressed", String(show));
      toggleKey.setAttribute("aria-label", show ? "Hide API key" : "Show API key");
    });
    forgetKey.addEventListener("click", () => {
      writeStorage(window.localStorage, KEY_STORAGE, null);
      keyInput.value = "";
      clearFieldError("api-key");
      setStatus("The API key was removed from this browser.");
      keyInput.focus();
    });

    // -- field errors --
    function setFieldError(name, message) {
      const field = fields[name];
      if (!field) return;
      field.input.setAttribute("aria-invalid", "true");
      field.error.textContent = message;
      field.error.hidden = false;
    }

    function clearFieldError(name) {
      const field = fields[name];
      field.input.removeAttribute("aria-invalid");
      field.error.textContent = "";
      field.error.hidden = true;
    }

    function clearAllErrors() {
      for (const name of Object.keys(fields)) clearFieldError(name);
      errorBox.hidden = true;
      errorBox.removeAttribute("data-code");
      showFailing.hidden = true;
    }

    showFailing.addEventListener("click", () => {
      setFailingShown(showFailing.getAttribute("aria-expanded") !== "true");
    });

    /** The picker's own name for a dialect (the server fills the picker from SUPPORTED_DIALECTS). */
    function dialectLabel(dialect) {
      const option = [...dialectSelect.options].find((item) => item.value === dialect);
      return option ? option.textContent : dialect;
    }

    // -- status, errors, result --
    function setStatus(message, action) {
      statusLine.replaceChildren();
      if (!message) return;
      const text = document.createElement("span");
      text.textContent = message;
      statusLine.appendChild(text);
      if (action) {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "link-button";
        button.textContent = action.label;
        button.addEventListener("click", action.run, { once: true });
        statusLine.appendChild(button);
      }
    }

    function showError(failure, code) {
      byId("error-title").textContent = failure.title;
      byId("error-detail").textContent = failure.detail;
      const reasons = byId("error-reasons");
      reasons.replaceChildren(...failure.reasons.map((reason) => {
        const item = document.createElement("li");
        item.textContent = reason;
        return item;
      }));
      reasons.hidden = failure.reasons.length === 0;
      const metaLine = byId("error-meta");
      metaLine.textContent = failure.requestId ? `Reference: ${failure.requestId}` : "";
      metaLine.hidden = !failure.requestId;
      errorBox.dataset.code = code || "";
      errorBox.hidden = false;
      emptyState.hidden = true;
      if (failure.field) {
        setFieldError(failure.field, failure.fieldMessage || failure.title);
        fields[failure.field].input.focus();
      }
    }

    function badge(kind, text, check) {
      const item = document.createElement("li");
      item.className = `badge badge-${kind}`;
      item.dataset.check = check;
      item.textContent = text;
      return item;
    }

    function listOrNone(names) {
      return Array.isArray(names) ? names.filter((name) => typeof name === "string") : [];
    }

    function renderCheck(check) {
      const items = [];
      const unknownTables = listOrNone(check.unknown_tables);
      const unknownColumns = listOrNone(check.unknown_columns);
      const problems = Array.isArray(check.problems) ? check.problems : [];
      // "Passed check" only for an answer the gateway called valid; a missing or odd field is not a pass.
      items.push(passedCheck(check)
        ? badge("ok", "Passed check", "valid")
        : badge("bad", "Failed check", "valid"));
      if ("compiled" in check) {
        items.push(check.compiled === true ? badge("ok", "Compiles", "compiled")
          : check.compiled === false ? badge("bad", "Does not compile", "compiled")
            : badge("neutral", "Not compiled", "compiled"));
      }
      // How far the answer was verified (docs/contract.md): compiled, names checked only, or not at all.
      if (check.verified === "compiled") items.push(badge("ok", "Verified by compiling", "verified"));
      else if (check.verified === "grounded") items.push(badge("warn", "Names checked, not compiled", "verified"));
      else if (check.verified === "unverified") items.push(badge("warn", "Not verified", "verified"));
      items.push(check.read_only
        ? badge("ok", "Read-only", "read-only")
        : badge("bad", "Writes data", "read-only"));
      items.push(unknownTables.length === 0
        ? badge("ok", "Tables known", "unknown-tables")
        : badge("warn", `Unknown tables: ${unknownTables.join(", ")}`, "unknown-tables"));
      items.push(unknownColumns.length === 0
        ? badge("ok", "Columns known", "unknown-columns")
        : badge("warn", `Unknown columns: ${unknownColumns.join(", ")}`, "unknown-columns"));
      items.push(problems.length === 0
        ? badge("ok", "No problems", "problems")
        : badge("warn", plural(problems.length, "problem", "problems"), "problems"));
      const agreement = agreementText(check.agreement);
      if (agreement) {
        const ratio = check.agreement.ratio;
        items.push(badge(ratio >= 0.75 ? "ok" : ratio >= 0.5 ? "neutral" : "warn", agreement, "agreement"));
      }
      if (typeof check.statement_type === "string" && check.statement_type) {
        items.push(badge("neutral", check.statement_type.toUpperCase(), "statement-type"));
      }
      if (typeof check.dialect === "string" && check.dialect) {
        items.push(badge("neutral", dialectLabel(check.dialect), "dialect"));
      }
      badges.replaceChildren(...items);

      const problemItems = checkReasons(check, "").map((message) => {
        const item = document.createElement("li");
        item.textContent = message;
        return item;
      });
      notes.replaceChildren(...problemItems);
      notes.hidden = problemItems.length === 0;
    }

    function metaEntry(term, value, name) {
      const wrapper = document.createElement("div");
      wrapper.dataset.meta = name;
      const dt = document.createElement("dt");
      dt.textContent = term;
      const dd = document.createElement("dd");
      dd.textContent = value;
      wrapper.append(dt, dd);
      return wrapper;
    }

    /** "SQL for PostgreSQL, translated from SQLite": which database the text is written for. */
    function dialectCaption(check) {
      const dialect = check && typeof check.dialect === "string" ? check.dialect : "";
      const source = check && typeof check.source_dialect === "string" ? check.source_dialect : "";
      if (!dialect) return "Generated SQL";
      const translated = source && source !== dialect ? `, translated from ${dialectLabel(source)}` : "";
      return `SQL for ${dialectLabel(dialect)}${translated}`;
    }

    function showSql(sql, check, { rejected }) {
      renderSql(sqlCode, sql);
      sqlPanel.hidden = false;
      sqlPanel.classList.toggle("is-rejected", rejected);
      sqlCaption.textContent = rejected ? "Rejected SQL: do not run" : dialectCaption(check);
      sqlCaption.dataset.dialect = check && typeof check.dialect === "string" ? check.dialect : "";
      sqlCaption.dataset.sourceDialect = check && typeof check.source_dialect === "string"
        ? check.source_dialect : "";
      emptyState.hidden = true;
      if (check) {
        renderCheck(check);
        if (rejected) notes.hidden = true; // the alert above already lists these reasons
      } else {
        badges.replaceChildren();
        notes.replaceChildren();
        notes.hidden = true;
      }
      copyableSql = rejected ? "" : sql;
      copyButton.disabled = rejected;
    }

    /** A refused answer: its SQL stays out of sight until the analyst asks for it, and is never copyable. */
    function offerFailingQuery(sql, check) {
      showSql(sql, check, { rejected: true });
      meta.replaceChildren();
      sqlPanel.hidden = true;
      showFailing.hidden = false;
      setFailingShown(false);
    }

    function setFailingShown(shown) {
      sqlPanel.hidden = !shown;
      showFailing.setAttribute("aria-expanded", String(shown));
      showFailing.textContent = shown ? "Hide the failing query" : "Show the failing query";
    }

    function showResult(result) {
      showSql(result.sql, result.check && typeof result.check === "object" ? result.check : null,
        { rejected: false });
      const entries = [];
      if (typeof result.latency_ms === "number") {
        entries.push(metaEntry("Latency", `${formatCount(Math.round(result.latency_ms))} ms`, "latency"));
      }
      entries.push(metaEntry("Cache", result.cached ? "Hit" : "Miss", "cache"));
      const usage = result.usage;
      if (usage && typeof usage.prompt_tokens === "number" && typeof usage.completion_tokens === "number") {
        entries.push(metaEntry("Tokens",
          `${formatCount(usage.prompt_tokens)} in · ${formatCount(usage.completion_tokens)} out`, "tokens"));
      }
      if (typeof result.model === "string") entries.push(metaEntry("Model", result.model, "model"));
      meta.replaceChildren(...entries);
      meta.hidden = false;
      const text = scopeText(result.check && result.check.schema_scope);
      scopeLine.textContent = text || "";
      scopeLine.hidden = !text;
    }

    function hideResult() {
      sqlPanel.hidden = true;
      sqlCode.replaceChildren();
      badges.replaceChildren();
      notes.replaceChildren();
      meta.replaceChildren();
      scopeLine.hidden = true;
      copyableSql = "";
      copyButton.disabled = true;
    }

    function setBusy(value) {
      busy = value;
      submitButton.disabled = value;
      submitButton.classList.toggle("is-busy", value);
      submitLabel.textContent = value ? "Generating…" : "Generate SQL";
      resultCard.setAttribute("aria-busy", String(value));
    }

    // -- submitting --
    function validateLocally(key, schema, question) {
      let first = null;
      if (!schema.trim()) {
        setFieldError("schema", "Paste at least one CREATE TABLE statement.");
        first = first || "schema";
      }
      if (!question.trim()) {
        setFieldError("question", "Type a question.");
        first = first || "question";
      }
      if (!key) {
        setFieldError("api-key", "Enter your API key.");
        first = "api-key";
      }
      if (first) fields[first].input.focus();
      return first === null;
    }

    /** The /v1/sql body: the pinned tables only when the analyst named some. */
    function requestBody(question, schema) {
      const body = { question, schema, dialect: dialectSelect.value };
      const pinned = fields.tables.input.value.split(/[\s,]+/).filter((name) => name !== "");
      if (pinned.length > 0) body.tables = pinned;
      return body;
    }

    async function readJson(response) {
      try {
        return await response.json();
      } catch (_err) {
        return null; // e.g. an HTML error page from a proxy
      }
    }

    async function submit() {
      if (busy) return;
      clearAllErrors();
      setStatus("");
      const key = keyInput.value.trim();
      const schema = schemaInput.value;
      const question = questionInput.value;
      if (!validateLocally(key, schema, question)) return;

      setBusy(true);
      hideResult();
      emptyState.hidden = true;
      setStatus("Generating SQL…");
      const controller = new AbortController();
      const timer = window.setTimeout(() => controller.abort(), REQUEST_TIMEOUT_MS);
      try {
        let response;
        try {
          response = await fetch(API_PATH, {
            method: "POST",
            headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
            body: JSON.stringify(requestBody(question, schema)),
            signal: controller.signal,
            cache: "no-store",
            credentials: "omit",
          });
        } catch (_err) {
          setStatus("");
          showError(controller.signal.aborted
            ? { title: "No answer from the gateway", detail: "The request took more than two minutes and " +
                "was stopped. Try again.", field: null, reasons: [] }
            : { title: "Could not reach sqlgate", detail: "The network request failed. Check your " +
                "connection or VPN, then try again. Your schema and question are still here.",
              field: null, reasons: [] },
            controller.signal.aborted ? "client_timeout" : "network_error");
          return;
        }
        const body = await readJson(response);
        setStatus("");
        if (response.ok && body && typeof body.sql === "string") {
          showResult(body);
          setStatus(body.cached ? "Done (answered from the cache)." : "Done.");
          return;
        }
        const failure = response.ok
          ? { title: "Unexpected answer from the gateway", detail: "The reply had no SQL in it. Try again.",
            field: null, reasons: [], requestId: response.headers.get("x-request-id") }
          : describeFailure(response.status, body, response.headers);
        const code = body && body.error && typeof body.error.code === "string" ? body.error.code : "";
        if (failure.check && typeof failure.check.query === "string" && failure.check.query) {
          offerFailingQuery(failure.check.query, failure.check);
        }
        showError(failure, code || `http_${response.status}`);
      } finally {
        window.clearTimeout(timer);
        setBusy(false);
      }
    }

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      submit();
    });
    document.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && !event.altKey) {
        event.preventDefault();
        submit();
      }
    });

    // -- examples --
    loadExample.addEventListener("click", () => {
      const previous = { schema: schemaInput.value, question: questionInput.value };
      const example = EXAMPLES[exampleIndex % EXAMPLES.length];
      exampleIndex += 1;
      schemaInput.value = example.schema;
      questionInput.value = example.question;
      for (const entry of counters) updateCounter(entry);
      clearFieldError("schema");
      clearFieldError("question");
      saveDraft();
      const hadText = previous.schema.trim() !== "" || previous.question.trim() !== "";
      setStatus(`Loaded example: ${example.name}.`, hadText ? {
        label: "Undo",
        run: () => {
          schemaInput.value = previous.schema;
          questionInput.value = previous.question;
          for (const entry of counters) updateCounter(entry);
          saveDraft();
          setStatus("Your previous text is back.");
          questionInput.focus();
        },
      } : null);
      questionInput.focus();
    });

    // -- copying --
    function copyWithSelection(text) {
      // For pages without clipboard permission: select the text in a hidden textarea and ask for a copy.
      const focused = document.activeElement;
      copyFallback.value = text;
      copyFallback.select();
      copyFallback.setSelectionRange(0, text.length);
      let copied = false;
      try {
        copied = document.execCommand("copy");
      } catch (_err) {
        copied = false;
      }
      if (focused && typeof focused.focus === "function") focused.focus();
      return copied;
    }

    function selectSqlText() {
      const range = document.createRange();
      range.selectNodeContents(sqlCode);
      const selection = window.getSelection();
      selection.removeAllRanges();
      selection.addRange(range);
    }

    async function copySql(text) {
      if (navigator.clipboard && window.isSecureContext) {
        try {
          await navigator.clipboard.writeText(text);
          return "clipboard";
        } catch (_err) {
          // Permission refused or the document lost focus: fall through to the selection copy.
        }
      }
      return copyWithSelection(text) ? "selection" : "failed";
    }

    copyButton.addEventListener("click", async () => {
      if (!copyableSql) return;
      const how = await copySql(copyableSql);
      copyButton.dataset.copied = how;
      window.clearTimeout(copyResetTimer);
      if (how === "failed") {
        selectSqlText();
        copyLabel.textContent = "Copy";
        setStatus(`Copying is blocked here: the SQL is selected, press ${isMac ? "⌘" : "Ctrl"}+C.`);
        return;
      }
      copyLabel.textContent = "Copied";
      setStatus("SQL copied to the clipboard.");
      copyResetTimer = window.setTimeout(() => { copyLabel.textContent = "Copy"; }, 2000);
    });
  });

  // Exposed so the browser tests can check the highlighter on hostile text directly.
  window.sqlgate = Object.freeze({ tokenizeSql, renderSql, describeFailure, passedCheck, agreementText,
    scopeText });
})();
