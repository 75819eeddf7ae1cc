// The try-it page: one request to this gateway, built from its own OpenAPI document and model list.
// Everything the service or a model sends back is shown as text (textContent), never as HTML.
"use strict";

(function () {
  const OUTPUT_FILES = {
    "text-translation": "out.translation.json",
    "text-completion": "out.completion.json",
    "text-to-text": "out.t2t.json",
    "text-to-image": "out.t2i.json",
  };
  const EXTENSIONS = { "image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/gif": "gif" };
  const state = { openapi: null, routes: null, keysRequired: false, apiKey: "", argFields: [], timer: null };
  const $ = (id) => document.getElementById(id);

  function element(tag, text, attributes) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
    return node;
  }

  function authHeaders() {
    return state.apiKey ? { Authorization: "Bearer " + state.apiKey } : {};
  }

  async function getJson(path) {
    const response = await fetch(path, { headers: authHeaders() });
    return { status: response.status, body: await response.json().catch(() => null) };
  }

  // A schema's bounds may be beyond what a JavaScript number holds exactly (a seed's 2^63-1):
  // such integers are kept as BigInt, from their source text, so they are shown as the API states them.
  function exactIntegers(key, value, context) {
    if (typeof value === "number" && !Number.isSafeInteger(value) && context && /^-?\d+$/.test(context.source)) {
      return BigInt(context.source);
    }
    return value;
  }

  async function getSchemaDocument(path) {
    const response = await fetch(path, { headers: authHeaders() });
    state.demo = response.headers.get("X-Demo"); // the demo (DEMO=1) labels every response
    const text = await response.text();
    try {
      return JSON.parse(text, exactIntegers);
    } catch {
      return null;
    }
  }

  // --- the task, direction and model pickers -------------------------------------------------

  function taskNames() {
    return Object.keys(state.openapi.paths)
      .filter((path) => path.startsWith("/api/infer/"))
      .map((path) => path.slice("/api/infer/".length));
  }

  function operation(task) {
    return state.openapi.paths["/api/infer/" + task].post;
  }

  function argsSchema(task) {
    const name = task.split("-").map((part) => part[0].toUpperCase() + part.slice(1)).join("");
    return state.openapi.components.schemas[name + "Args"];
  }

  function fillTasks() {
    const select = $("task");
    for (const task of taskNames()) select.append(element("option", task, { value: task }));
    state.keysRequired = taskNames().some((task) => (operation(task).security || []).length > 0);
    $("key-field").hidden = !state.keysRequired;
  }

  function fillDirections() {
    const task = $("task").value;
    const parameter = (operation(task).parameters || []).find((p) => p.name === "model_type");
    const select = $("model_type");
    select.replaceChildren();
    $("direction-field").hidden = !parameter;
    if (!parameter) return;
    for (const pair of parameter.schema.enum) select.append(element("option", pair, { value: pair }));
    select.value = parameter.schema.default;
  }

  function routeLabel() {
    const task = $("task").value;
    return $("direction-field").hidden ? task : task + ":" + $("model_type").value;
  }

  function describeTarget(target) {
    const parts = [target.model, target.status];
    if (target.breaker && target.breaker.state !== "closed") parts.push("breaker " + target.breaker.state);
    return parts.join(" · ");
  }

  function fillModels() {
    const select = $("model_name");
    select.replaceChildren(element("option", "The configured chain (falls back in order)", { value: "" }));
    if (!state.routes) {
      $("model-hint").textContent = state.keysRequired
        ? "Enter the API key to list the models."
        : "The model list could not be read.";
      return;
    }
    const route = state.routes.find((r) => r.route === routeLabel());
    for (const target of route ? route.targets : []) {
      select.append(element("option", describeTarget(target), { value: target.key }));
    }
    $("model-hint").textContent = route ? "In fallback order: " + route.targets.map(describeTarget).join(" → ") : "";
  }

  async function loadModels() {
    if (state.keysRequired && !state.apiKey) {
      fillModels(); // nothing to ask without a key: the hint says to enter one
      return;
    }
    const answer = await getJson("/api/models");
    state.routes = answer.status === 200 && answer.body ? answer.body.routes : null;
    fillModels();
  }

  // --- the arguments, as a form built from the task's schema ---------------------------------

  function bounds(schema) {
    const parts = [];
    if (schema.minimum !== undefined) parts.push((schema.exclusiveMinimum ? "> " : "≥ ") + schema.minimum);
    if (schema.maximum !== undefined) parts.push((schema.exclusiveMaximum ? "< " : "≤ ") + schema.maximum);
    if (schema.maxLength !== undefined) parts.push("at most " + schema.maxLength + " characters");
    return parts.join(", ");
  }

  function argField(name, schema) {
    const id = "arg-" + name;
    const wrapper = element("div", null, { class: "field" });
    const label = element("label", name, { for: id });
    let input;
    if (schema.type === "boolean") {
      input = element("input", null, { id, type: "checkbox" });
      input.checked = schema.default === true;
    } else if (schema.type === "integer" || schema.type === "number") {
      input = element("input", null, { id, type: "number", step: schema.type === "integer" ? "1" : "any" });
      if (schema.minimum !== undefined) input.min = schema.minimum;
      if (schema.maximum !== undefined) input.max = schema.maximum;
      if (schema.default !== undefined) input.value = schema.default;
    } else {
      input = element("input", null, { id, type: "text" });
      if (schema.default !== undefined) input.value = schema.default;
    }
    const hint = [schema.type, schema.default !== undefined ? "default " + schema.default : "optional", bounds(schema)]
      .filter(Boolean)
      .join("; ");
    const error = element("p", null, { class: "error", id: id + "-error", hidden: "" });
    input.setAttribute("aria-describedby", id + "-hint " + id + "-error");
    input.addEventListener("input", () => checkField(field));
    wrapper.append(label, input, element("p", hint, { class: "hint", id: id + "-hint" }), error);
    const field = { name, schema, input, error };
    return { wrapper, field };
  }

  function fillArgs() {
    const schema = argsSchema($("task").value);
    const holder = $("arg-fields");
    holder.replaceChildren();
    state.argFields = [];
    for (const [name, property] of Object.entries(schema.properties || {})) {
      const { wrapper, field } = argField(name, property);
      holder.append(wrapper);
      state.argFields.push(field);
    }
  }

  function fieldValue(field) {
    if (field.schema.type === "boolean") return field.input.checked;
    const raw = field.input.value.trim();
    if (raw === "") return undefined;
    if (field.schema.type === "integer" && /^-?\d+$/.test(raw) && !Number.isSafeInteger(Number(raw))) {
      return BigInt(raw); // a seed near 2^63-1 is sent as typed, not rounded
    }
    if (field.schema.type === "integer" || field.schema.type === "number") return Number(raw);
    return raw;
  }

  function problem(field) {
    const value = fieldValue(field);
    const schema = field.schema;
    if (value === undefined || typeof value === "boolean") return "";
    if (schema.type === "integer" && typeof value !== "bigint" && !Number.isInteger(value)) return "must be a whole number";
    if ((schema.type === "number" || schema.type === "integer") && Number.isNaN(value)) return "must be a number";
    if (schema.minimum !== undefined && (schema.exclusiveMinimum ? value <= schema.minimum : value < schema.minimum)) {
      return "must be " + bounds(schema);
    }
    if (schema.maximum !== undefined && (schema.exclusiveMaximum ? value >= schema.maximum : value > schema.maximum)) {
      return "must be " + bounds(schema);
    }
    if (schema.maxLength !== undefined && String(value).length > schema.maxLength) return "is too long";
    return "";
  }

  function checkField(field) {
    const message = problem(field);
    field.input.setAttribute("aria-invalid", message ? "true" : "false");
    field.error.textContent = message ? field.name + " " + message : "";
    field.error.hidden = !message;
    return !message;
  }

  // --- the request, and the same request as curl ----------------------------------------------

  function currentRequest() {
    const task = $("task").value;
    const query = new URLSearchParams();
    if (!$("direction-field").hidden) query.set("model_type", $("model_type").value);
    if ($("model_name").value) query.set("model_name", $("model_name").value);
    const args = {};
    for (const field of state.argFields) {
      const value = fieldValue(field);
      if (value !== undefined) args[field.name] = value;
    }
    const path = "/api/infer/" + task + (query.toString() ? "?" + query : "");
    return { task, path, body: { inputs: $("inputs").value, args } };
  }

  // JSON text with BigInt values written as the exact integers they are.
  function toJson(value) {
    return JSON.stringify(value, (key, item) => (typeof item === "bigint" ? JSON.rawJSON(item.toString()) : item));
  }

  function shellQuote(text) {
    return "'" + text.replace(/'/g, "'\\''") + "'";
  }

  function curlCommand(request, resultTypes) {
    const output = OUTPUT_FILES[request.task];
    const body = toJson({ inputs: request.body.inputs, args: toJson(request.body.args) });
    const lines = [
      "curl -H \"Content-Type: application/json\"" +
        (state.apiKey ? " -H \"Authorization: Bearer $HF_GATEWAY_API_KEY\"" : "") +
        " -X POST -d " + shellQuote(body) + " \"" + location.origin + request.path + "\" -o " + output,
    ];
    if (request.task === "text-to-image") {
      const count = request.body.args.num_sentences || 1;
      for (let n = 0; n < count; n++) {
        const extension = EXTENSIONS[(resultTypes || [])[n]] || "jpg";
        lines.push("jq -r '.result[" + n + "].image_base64' " + output + " | base64 -d > result-" + (n + 1) + "." + extension);
      }
    }
    return lines.join("\n");
  }

  async function copyCurl() {
    const command = curlCommand(currentRequest(), state.lastTypes);
    $("curl").textContent = command;
    $("curl-section").hidden = false;
    try {
      await navigator.clipboard.writeText(command);
      $("curl-note").textContent = "Copied. Set HF_GATEWAY_API_KEY first when a key is needed.";
    } catch (error) {
      $("curl-note").textContent = "Select the command above to copy it.";
    }
  }

  // --- sending, and showing what came back ------------------------------------------------------

  function startProgress() {
    const started = performance.now();
    $("progress").hidden = false;
    $("elapsed").textContent = "0.0";
    state.timer = setInterval(() => {
      $("elapsed").textContent = ((performance.now() - started) / 1000).toFixed(1);
    }, 100);
    return started;
  }

  function stopProgress() {
    clearInterval(state.timer);
    $("progress").hidden = true;
  }

  function fact(name, value) {
    $("facts").append(element("dt", name), element("dd", value));
  }

  function showImages(results) {
    results.forEach((item, index) => {
      const source = "data:" + item.content_type + ";base64," + item.image_base64;
      const name = "result-" + (index + 1) + "." + (EXTENSIONS[item.content_type] || "bin");
      const image = element("img", null, { src: source, alt: "Result " + (index + 1) + " (" + item.content_type + ")" });
      const caption = element("figcaption");
      caption.append(element("a", "Download " + name, { href: source, download: name }));
      const figure = element("figure");
      figure.append(image, caption);
      $("images").append(figure);
    });
  }

  function showOutcome(response, answer, seconds) {
    const outcome = $("outcome");
    $("facts").replaceChildren();
    $("texts").replaceChildren();
    $("images").replaceChildren();
    $("error").replaceChildren();
    $("error").hidden = true;
    outcome.hidden = false;
    fact("Status", response.status);
    fact("Request id", response.headers.get("X-Request-ID") || (answer && answer.request_id) || "-");
    fact("Duration", seconds.toFixed(2) + " s");
    if (response.headers.get("X-Cache")) fact("Cache", response.headers.get("X-Cache"));
    if (answer && answer.code === 0) {
      $("outcome-title").textContent = "Result";
      fact("Model", answer.model);
      if (answer.recorded && answer.recorded.written) {
        fact("Recorded", "no: " + answer.message);
        fact("Written for", answer.recorded.recorded_input);
        fact("Source", answer.recorded.source);
      } else if (answer.recorded) {
        fact("Recorded", "yes: " + answer.message);
        fact("Recorded input", answer.recorded.recorded_input);
        fact("Recording", answer.recorded.source);
      }
      const images = answer.result.filter((item) => typeof item === "object");
      answer.result.filter((item) => typeof item === "string").forEach((text) => $("texts").append(element("li", text)));
      state.lastTypes = images.map((item) => item.content_type);
      showImages(images);
      return;
    }
    $("outcome-title").textContent = "Error";
    const error = $("error");
    error.hidden = false;
    if (!answer) {
      error.append(element("p", "The service answered " + response.status + " with no JSON body."));
      return;
    }
    error.append(element("p", answer.message));
    fact("Error type", answer.error_type);
    if (response.headers.get("Retry-After")) fact("Retry after", response.headers.get("Retry-After") + " s");
  }

  async function send(event) {
    event.preventDefault();
    const inputsError = $("inputs-error");
    inputsError.hidden = $("inputs").value.trim() !== "";
    inputsError.textContent = inputsError.hidden ? "" : "Enter an input.";
    state.argFields.forEach(checkField); // marked here; the API has the last word and says why
    const request = currentRequest();
    const button = $("send");
    button.disabled = true;
    const started = startProgress();
    let response = null;
    let answer = null;
    try {
      response = await fetch(request.path, {
        method: "POST",
        headers: Object.assign({ "Content-Type": "application/json" }, authHeaders()),
        body: toJson(request.body),
      });
      answer = await response.json().catch(() => null);
    } catch (error) {
      response = { status: "no answer (" + error.message + ")", headers: new Headers() };
    } finally {
      stopProgress();
      button.disabled = false;
    }
    showOutcome(response, answer, (performance.now() - started) / 1000);
    $("outcome").scrollIntoView({ block: "start" });
    $("outcome-title").focus({ preventScroll: true }); // keyboard and screen reader users land on it
  }

  async function start() {
    state.openapi = await getSchemaDocument("/openapi.json");
    $("demo-banner").hidden = !state.demo;
    fillTasks();
    fillDirections();
    fillArgs();
    $("task").addEventListener("change", () => {
      fillDirections();
      fillArgs();
      fillModels();
    });
    $("model_type").addEventListener("change", fillModels);
    $("api_key").addEventListener("change", () => {
      state.apiKey = $("api_key").value.trim();
      loadModels();
    });
    $("request").addEventListener("submit", send);
    $("copy-curl").addEventListener("click", copyCurl);
    document.body.dataset.ready = "yes"; // the form is built; the model list may follow
    await loadModels();
    document.body.dataset.models = "yes";
  }

  document.addEventListener("DOMContentLoaded", start);
})();
