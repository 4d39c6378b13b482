// Bestow console: small enhancements over server-rendered pages. Every page works without it;
// with it, forms ask for confirmation, dashboards refresh, and condition trees get an editor.
"use strict";

// Forms with data-confirm ask before they post.
document.addEventListener("submit", (event) => {
  const message = event.target.dataset && event.target.dataset.confirm;
  if (message && !window.confirm(message)) event.preventDefault();
});

// Copy buttons: data-copy names the element whose text is copied.
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-copy]");
  if (!button) return;
  const source = document.querySelector(button.dataset.copy);
  if (source && navigator.clipboard) {
    navigator.clipboard.writeText(source.textContent.trim()).then(() => { button.textContent = "Copied"; });
  }
});

// Instants the server wrote in UTC (<time data-local>) are shown on the viewer's own clock,
// with its zone; the UTC text stays as the element's title. Event dates (in the event's own
// zone) are left as they are.
const LOCAL_CLOCK = new Intl.DateTimeFormat("en-CA", {
  year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
  hourCycle: "h23", timeZoneName: "short",
});

function localTimes(root) {
  root.querySelectorAll("time[data-local]").forEach((time) => {
    const at = new Date(time.dateTime);
    if (Number.isNaN(at.getTime())) return;
    const part = Object.fromEntries(LOCAL_CLOCK.formatToParts(at).map(({ type, value }) => [type, value]));
    const seconds = at.getUTCSeconds() || at.getUTCMilliseconds() ? `:${part.second}` : "";
    time.title = time.textContent;
    time.textContent = `${part.year}-${part.month}-${part.day} ${part.hour}:${part.minute}${seconds} ${part.timeZoneName}`;
    time.removeAttribute("data-local");
  });
}

// Live regions: data-refresh is re-fetched every data-interval milliseconds.
function startRefresh(element) {
  const interval = Number(element.dataset.interval || 5000);
  const tick = async () => {
    try {
      const response = await fetch(element.dataset.refresh, { credentials: "same-origin", redirect: "error" });
      if (response.ok) {
        element.innerHTML = await response.text();
        localTimes(element);
      }
    } catch (_) { /* the next tick tries again */ }
  };
  setInterval(tick, interval);
}

// Reward rows: the detail fields shown follow the type; "Add a reward" copies the last row.
function showDetailsFor(row) {
  const type = row.querySelector("[data-reward-type]").value;
  row.querySelectorAll("[data-for-type]").forEach((field) => { field.hidden = field.dataset.forType !== type; });
}

function addRewardRow(button) {
  const rows = button.parentElement.querySelectorAll(".reward-row");
  const last = rows[rows.length - 1];
  const index = rows.length;
  const copy = last.cloneNode(true);
  copy.dataset.index = String(index);
  copy.querySelectorAll(".field-error").forEach((error) => error.remove());
  copy.querySelectorAll("[name], [id], label[for]").forEach((element) => {
    for (const attribute of ["name", "id", "for"]) {
      const value = element.getAttribute(attribute);
      if (value) element.setAttribute(attribute, value.replace(/(rewards\.|reward-)\d+/, `$1${index}`));
    }
    if (element.tagName === "INPUT") element.value = "";
  });
  button.before(copy);
  showDetailsFor(copy);
}

document.addEventListener("change", (event) => {
  if (event.target.matches("[data-reward-type]")) showDetailsFor(event.target.closest(".reward-row"));
});
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-add-reward]");
  if (button) addRewardRow(button);
});

// The condition-tree editor: edits the JSON in its textarea as a tree of nodes. Groups (AND,
// OR) hold sub-conditions, NOT holds one; leaves have their own fields, as the server describes
// them (data-leaves: [{name, summary, members: [{name, kind, description, …bounds}]}]). Errors
// from the server (data-errors: [{pointer, message}], pointers relative to the tree) are shown
// at their node. An audience rule uses the same editor: its leaves add the kinds "choice"
// (options: [{value, label}]) and "value" (a string, or JSON such as 3, true or ["KR", "JP"]),
// members marked optional start empty, data-scope="off" hides the period scope, and
// data-default-leaf names the leaf a new sub-condition starts as. A field left empty is left out.
const NUMERIC_KINDS = ["whole", "positiveNumber", "number"];

class ConditionEditor extends HTMLElement {
  connectedCallback() {
    this.textarea = this.querySelector("textarea");
    this.types = JSON.parse(this.dataset.types || "[]");
    this.defaultLeaf = this.dataset.defaultLeaf || "LOGIN_DAYS";
    this.scoped = this.dataset.scope !== "off";
    // Leaf type => its members as described.
    this.leafFields = {};
    for (const leaf of JSON.parse(this.dataset.leaves || "[]")) this.leafFields[leaf.name] = leaf.members;
    this.errors = JSON.parse(this.dataset.errors || "[]");
    let tree = null;
    try { tree = this.textarea.value.trim() ? JSON.parse(this.textarea.value) : null; } catch (_) { return; }
    this.tree = tree;
    this.textarea.closest("condition-editor").querySelector("label").hidden = true;
    this.textarea.hidden = true;
    this.root = document.createElement("div");
    this.root.className = "cond-root";
    this.append(this.root);
    this.render();
  }

  save() {
    this.textarea.value = this.tree === null ? "" : JSON.stringify(this.tree);
  }

  render() {
    this.root.replaceChildren();
    if (this.tree === null) {
      this.root.append(this.button("Add a condition", () => { this.tree = { type: "AND", subConditions: [] }; this.changed(); }));
    } else {
      this.root.append(this.node(this.tree, "", (next) => { this.tree = next; }));
    }
  }

  changed() {
    this.save();
    this.render();
  }

  button(text, action) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = text;
    button.addEventListener("click", action);
    return button;
  }

  labelled(text, control) {
    const label = document.createElement("label");
    label.textContent = text + " ";
    label.append(control);
    return label;
  }

  node(condition, pointer, replace) {
    const box = document.createElement("div");
    box.className = "cond-node";
    box.dataset.pointer = pointer;
    const head = document.createElement("div");
    head.className = "cond-head";
    const type = document.createElement("select");
    for (const name of this.types) type.append(new Option(name, name, false, name === condition.type));
    type.addEventListener("change", () => { replace(this.blank(type.value, condition)); this.changed(); });
    head.append(this.labelled("Type", type));
    for (const member of this.leafFields[condition.type] || []) {
      head.append(this.labelled(member.name, this.field(condition, member)));
    }
    if (this.leafFields[condition.type] && this.scoped) {
      const scope = document.createElement("select");
      scope.append(new Option("this period", ""), new Option("whole event", "EVENT", false, condition.scope === "EVENT"));
      scope.addEventListener("change", () => {
        if (scope.value) condition.scope = scope.value; else delete condition.scope;
        this.save();
      });
      head.append(this.labelled("scope", scope));
    }
    head.append(this.button("Remove", () => { replace(null); this.changed(); }));
    box.append(head);
    for (const error of this.errors.filter((e) => ConditionEditor.concerns(e.pointer, pointer))) {
      box.classList.add("has-error");
      const message = document.createElement("p");
      message.className = "node-error";
      message.setAttribute("role", "alert");
      message.textContent = error.message;
      box.append(message);
    }
    const children = document.createElement("div");
    children.className = "cond-children";
    if (condition.type === "AND" || condition.type === "OR") {
      const list = condition.subConditions || (condition.subConditions = []);
      list.forEach((child, index) => {
        children.append(this.node(child, `${pointer}/subConditions/${index}`, (next) => {
          if (next === null) list.splice(index, 1); else list[index] = next;
        }));
      });
      children.append(this.button("Add a sub-condition", () => { list.push(this.blank(this.defaultLeaf, {})); this.changed(); }));
    } else if (condition.type === "NOT") {
      if (condition.condition) {
        children.append(this.node(condition.condition, `${pointer}/condition`, (next) => {
          if (next === null) delete condition.condition; else condition.condition = next;
        }));
      } else {
        children.append(this.button("Add the negated condition", () => { condition.condition = this.blank(this.defaultLeaf, {}); this.changed(); }));
      }
    }
    box.append(children);
    return box;
  }

  // The input of one member of a leaf; what it holds is written back as the member's kind reads.
  field(condition, member) {
    const name = member.name;
    const current = condition[name];
    let input;
    if (member.kind === "choice") {
      input = document.createElement("select");
      if (member.optional || !member.options.some((option) => option.value === current)) input.append(new Option("", ""));
      for (const option of member.options) input.append(new Option(option.label, option.value, false, option.value === current));
    } else {
      input = document.createElement("input");
      input.type = NUMERIC_KINDS.includes(member.kind) ? "number" : "text";
      if (input.type === "number") input.step = "any";
      input.value = current === undefined ? "" : member.kind === "value" && typeof current !== "string" ? JSON.stringify(current) : current;
    }
    input.addEventListener("change", () => {
      const text = input.value;
      if (text === "") delete condition[name];
      else if (NUMERIC_KINDS.includes(member.kind)) condition[name] = Number(text);
      else if (member.kind === "value") condition[name] = ConditionEditor.loose(text);
      else condition[name] = text;
      this.save();
    });
    return input;
  }

  // A typed value: JSON when it reads as a number, a boolean or a list, the text itself otherwise.
  static loose(text) {
    try {
      const value = JSON.parse(text);
      if (typeof value === "number" || typeof value === "boolean" || Array.isArray(value)) return value;
    } catch (_) { /* plain text */ }
    return text;
  }

  // An error concerns a node when it points at the node itself or at one of its own fields
  // (e.g. "/subConditions/0/days" concerns "/subConditions/0"); deeper pointers are a child's.
  static concerns(errorPointer, nodePointer) {
    if (errorPointer === nodePointer || (nodePointer === "" && errorPointer === "/")) return true;
    const rest = errorPointer.startsWith(nodePointer + "/") ? errorPointer.slice(nodePointer.length) : "";
    return /^\/[A-Za-z]+$/.test(rest);
  }

  blank(type, previous) {
    if (type === "AND" || type === "OR") {
      const kept = previous.subConditions || (previous.condition ? [previous.condition] : []);
      return { type, subConditions: kept };
    }
    if (type === "NOT") return { type, condition: previous.subConditions ? previous.subConditions[0] : undefined };
    const leaf = { type };
    for (const member of this.leafFields[type] || []) {
      if (member.optional) continue;
      if (member.kind === "choice") leaf[member.name] = member.options.length ? member.options[0].value : "";
      else leaf[member.name] = NUMERIC_KINDS.includes(member.kind) ? 1 : "";
    }
    return leaf;
  }
}

customElements.define("condition-editor", ConditionEditor);

document.addEventListener("DOMContentLoaded", () => {
  localTimes(document);
  document.querySelectorAll("[data-refresh]").forEach(startRefresh);
  document.querySelectorAll(".reward-row").forEach(showDetailsFor);
});
